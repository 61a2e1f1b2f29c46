"""The exceptions radlab turns into one-line messages and exit codes (never a traceback)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from os import PathLike


class RadlabError(Exception):
    """Base class for errors a user can fix; the CLI prints the message and exits with `exit_code`."""

    exit_code = 1


class RadlabDataError(RadlabError):
    """A problem with a user's file: unreadable, malformed, missing. Names the file (and line for CSVs)."""

    exit_code = 1

    def __init__(self, path: str | PathLike[str], reason: str, line: int | None = None) -> None:
        self.path = str(path)
        self.reason = reason
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


class RadlabConfigError(RadlabError):
    """A bad configuration or option value: a usage error (exit code 2)."""

    exit_code = 2


class Interrupted(BaseException):
    """SIGTERM or SIGINT arrived: the command stops with 128 + the signal's number (143, 130) and one line
    saying where (`during`) and what to do next (`then`). A BaseException, as KeyboardInterrupt is, so that
    no `except Exception` on the way (a reader's "unreadable file" fallback, say) takes it for a bad file."""

    def __init__(self, signum: int, during: str = "", then: str = "") -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(f"interrupted ({name}){' ' + during if during else ''}{'; ' + then if then else ''}")


FileErrors = (FileNotFoundError, IsADirectoryError, PermissionError)
"""What opening a user's file raises when the file itself is not there to read (see `unreadable`)."""


def unreadable(path: str | PathLike[str], error: OSError, what: str) -> RadlabDataError:
    """One line for a file that could not be opened: missing, a folder where `what` was expected, or not
    readable by this user."""
    if isinstance(error, FileNotFoundError):
        return RadlabDataError(path, "file not found")
    if isinstance(error, IsADirectoryError):
        return RadlabDataError(path, f"is a folder, not {what}")
    return RadlabDataError(path, "permission denied")


def nothing_read(source: str | PathLike[str], total: int, what: str, hint: str = "") -> RadlabDataError:
    """The error of a predict none of whose `total` inputs could be read: a submission of fallbacks only would
    look complete, so nothing is written (exit 1). `hint` names the likely mistake."""
    return RadlabDataError(source, f"none of its {total} {what} could be read; nothing written{hint}")


def exit_code_of(run: Callable[[], object]) -> int:
    """Run `run` (a command); 0 when it returns. A user's error, a file-system refusal (a full disk, a
    read-only folder) or an interrupt is one line on stderr and its exit code instead of a traceback. What an
    entry point (the CLI, a CodaLab bundle's predict.py) hands to sys.exit."""
    try:
        run()
    except Interrupted as exc:
        print(str(exc), file=sys.stderr)
        return exc.exit_code
    except RadlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(str(Interrupted(signal.SIGINT)), file=sys.stderr)
        return 130
    return 0
