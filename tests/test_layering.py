"""The shape of the house, read from the source with `ast`: core imports no task, a task imports no other
task, the metrics import no torch, and `radlab --help` imports no torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import radlab

PACKAGE = Path(radlab.__file__).resolve().parent


def _imports(path: Path) -> set[str]:
    """Every module a file imports (absolute names; relative imports resolved against its package)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "Lazy":
            found |= {arg.value.split(":")[0] for arg in node.args if isinstance(arg, ast.Constant)}
    return found


def _files(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _files("core"), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_core_imports_no_task(path):
    assert not {name for name in _imports(path) if name.startswith("radlab.tasks")}


TASK_FOLDERS = sorted(p.name for p in (PACKAGE / "tasks").iterdir() if (p / "__init__.py").is_file())


@pytest.mark.parametrize("task", TASK_FOLDERS)
def test_a_task_imports_no_other_task(task):
    for path in _files(f"tasks/{task}"):
        others = {n.split(".")[2] for n in _imports(path) if n.startswith("radlab.tasks.")} - {task}
        assert not others, (path.name, others)


@pytest.mark.parametrize("path", _files("core/metrics"), ids=lambda p: p.name)
def test_the_metrics_import_no_torch(path):
    assert not {name for name in _imports(path) if name.split(".")[0] in ("torch", "lightning", "torchvision")}


@pytest.mark.parametrize("task", TASK_FOLDERS)
def test_a_task_folder_holds_at_most_13_files(task):
    files = [p for p in (PACKAGE / "tasks" / task).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert len([p for p in files if p.suffix == ".py"]) <= 13, sorted(p.name for p in files)


def test_the_command_line_imports_no_torch_to_show_its_help():
    probe = "import sys, radlab.cli; print(sorted(m for m in ('torch', 'lightning', 'numpy') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout
