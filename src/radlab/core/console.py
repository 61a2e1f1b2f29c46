"""Where radlab talks to people: warnings and progress on stderr, so stdout stays machine-readable."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.text import Text

stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    """Print one warning line on stderr."""
    stderr.print(Text.assemble(("warning:", "yellow"), " ", message), highlight=False)


def info(message: str) -> None:
    """Print one informational line on stderr."""
    stderr.print(message, markup=False, highlight=False)


def interactive() -> bool:
    """True when stderr is a terminal (animated progress bars make sense)."""
    return sys.stderr.isatty()


def summary_line(head: str, *counts: tuple[int, str]) -> str:
    """`head`, then "; N what" for each count that is not zero: the one line a command ends with."""
    return "; ".join([head, *(f"{n} {what}" for n, what in counts if n)])
