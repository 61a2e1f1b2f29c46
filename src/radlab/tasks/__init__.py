"""One package per challenge. Each provides `cli.py` (its commands) and is discovered by name."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

TASK_ORDER = ("mura", "mrnet", "pneumonia", "ich")


def task_names() -> list[str]:
    """Installed task packages, in the canonical order, then any others alphabetically."""
    found = {m.name for m in pkgutil.iter_modules(__path__) if m.ispkg}
    return [n for n in TASK_ORDER if n in found] + sorted(found - set(TASK_ORDER))


def task_cli(name: str) -> ModuleType:
    """The `cli` module of a task package."""
    return task_module(name, "cli")


def task_module(name: str, part: str) -> ModuleType:
    """A module of a task package (`report`, `explain`, ...), imported on demand."""
    return importlib.import_module(f"radlab.tasks.{name}.{part}")
