"""Advisory locks (flock) between radlab processes sharing a folder: a run directory one training owns, a
preprocessing cache that several readers share while one writer extends it. The folder itself is locked (no
lock file is left behind), and a lock goes with its process: a killed one never leaves a folder locked.

Where the file system cannot lock a folder (NFS emulates flock with fcntl locks, which need a file open for
writing), a `.radlab.lock` file inside it is locked instead; where it cannot lock at all (Lustre mounted
without `flock`), radlab warns once per folder and goes on unlocked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from radlab.core.console import warn
from radlab.core.errors import RadlabDataError, RadlabError

LOCK_FILE = ".radlab.lock"
_warned: set[Path] = set()


@contextlib.contextmanager
def locked(folder: Path, *, shared: bool = False, wait: bool = True, busy: str = "") -> Iterator[None]:
    """Hold a lock on `folder` (made if missing): shared (readers) or exclusive (a writer); without `wait`, a
    lock another process holds is a RadlabError saying `busy`."""
    if folder.exists() and not folder.is_dir():
        raise RadlabDataError(folder, "is a file, not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            _lock(fd, mode, folder, busy)
        except OSError:
            os.close(fd)
            fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                _lock(fd, mode, folder, busy)
            except OSError as error:
                if folder not in _warned:
                    _warned.add(folder)
                    warn(f"{folder}: this file system cannot lock ({error.strerror}); radlab goes on unlocked")
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _lock(fd: int, mode: int, folder: Path, busy: str) -> None:
    try:
        fcntl.flock(fd, mode)
    except BlockingIOError:
        raise RadlabError(busy or f"{folder} is in use by another radlab process") from None
