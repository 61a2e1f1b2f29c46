"""Atomic file writes: a temporary file in the target's folder, fsync, then rename over the final name.

A reader (or a crash) never sees a half-written file under its final name. What the final name already is
is respected: a symlink is followed and its target replaced (the link stays a link); a device or a FIFO
(`/dev/stdout`, a pipe) is written through, never replaced by a file; a folder is refused; an existing
file keeps its permissions.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from radlab.core.errors import RadlabDataError


def write_target(final: str | os.PathLike[str]) -> tuple[Path, os.stat_result | None]:
    """(the path a write to `final` lands on, its stat if it exists): symlinks resolved, a folder refused."""
    path = Path(final)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        found: os.stat_result | None = os.stat(target)
    except (FileNotFoundError, NotADirectoryError):  # a missing file, or a file where a folder should be
        found = None
    if found is not None and stat.S_ISDIR(found.st_mode):
        raise RadlabDataError(path, "is a folder; give a file name to write")
    return target, found


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str], durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to `final`; on success it replaces `final`, on error it is removed.

    `durable` also flushes the data to disk before the rename (survives power loss, not just a crash);
    bulk writers of regenerable files (synthetic data) turn it off. A `final` that is a device or a FIFO is
    yielded itself: it is written through.
    """
    target, existing = write_target(final)
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        with _named(final):
            yield target
        return
    with _named(final):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with _named(final):
            yield tmp
            if durable:
                with open(tmp, "rb+") as handle:
                    os.fsync(handle.fileno())
            os.chmod(tmp, stat.S_IMODE(existing.st_mode) if existing is not None else 0o666 & ~_umask())
            os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(target.parent)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


@contextlib.contextmanager
def _named(final: str | os.PathLike[str]) -> Iterator[None]:
    """An OSError that names no file (a write that hit a full disk) is raised again naming `final`, so that
    the one-line message says which output failed."""
    try:
        yield
    except OSError as error:
        if error.filename is None and error.errno is not None:
            raise OSError(error.errno, error.strerror, str(final)) from None
        raise


def _umask() -> int:
    """The process's umask, read from /proc where Linux shows it: setting it to read it back (the portable way)
    would, for that instant, give files other threads create (a sqlite journal, say) mode 0666."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
