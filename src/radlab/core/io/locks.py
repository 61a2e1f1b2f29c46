"""Advisory locks (flock) between radlab processes sharing a folder: a run directory one training owns, a
preprocessing cache that several readers share while one writer extends it. The folder itself is locked (no
lock file is left behind), and a lock goes with its process: a killed one never leaves a folder locked."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from radlab.core.errors import RadlabDataError, RadlabError


@contextlib.contextmanager
def locked(folder: Path, *, shared: bool = False, wait: bool = True, busy: str = "") -> Iterator[None]:
    """Hold a lock on `folder` (made if missing): shared (readers) or exclusive (a writer); without `wait`, a
    lock another process holds is a RadlabError saying `busy`."""
    if folder.exists() and not folder.is_dir():
        raise RadlabDataError(folder, "is a file, not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            fcntl.flock(fd, mode if wait else mode | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RadlabError(busy or f"{folder} is in use by another radlab process") from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
