"""Which radlab code runs: its version and, when installed from a git checkout (or a git URL), the commit."""

from __future__ import annotations

import json
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any


def code_revision() -> dict[str, Any]:
    """{"version", "revision", "dirty", "source"}: the commit is git's for an editable install from a
    checkout ("dirty" when tracked files differ from it), pip's record for an install from a git URL, else
    None."""
    try:
        version: str | None = metadata.version("radlab")
    except metadata.PackageNotFoundError:
        version = None
    found = _git_checkout(Path(__file__).resolve().parent)
    if found is None:
        found = _pip_vcs_record()
    revision, dirty, source = found if found is not None else (None, None, None)
    return {"version": version, "revision": revision, "dirty": dirty, "source": source}


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _git_checkout(folder: Path) -> tuple[str, bool | None, str] | None:
    """(commit, dirty, "git") when radlab's own source lies in a git work tree."""
    commit = _git(folder, "rev-parse", "HEAD")
    if not commit:
        return None
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return commit, None if status is None else bool(status), "git"


def _pip_vcs_record() -> tuple[str, None, str] | None:
    """(commit, None, "pip") from direct_url.json when pip installed radlab from a git URL."""
    try:
        text = metadata.distribution("radlab").read_text("direct_url.json")
        commit = json.loads(text or "{}").get("vcs_info", {}).get("commit_id")
    except (metadata.PackageNotFoundError, ValueError, AttributeError):
        return None
    return (str(commit), None, "pip") if commit else None
