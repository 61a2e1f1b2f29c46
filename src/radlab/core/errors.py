"""The exceptions radlab turns into one-line messages and exit codes (never a traceback)."""

from __future__ import annotations

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
