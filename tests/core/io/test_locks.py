"""Folder locks: exclusive against exclusive and shared, shared with shared; and on file systems that cannot
lock a folder (NFS) or cannot lock at all (Lustre without flock)."""

from __future__ import annotations

import errno
import fcntl
import os
import stat

import pytest

from radlab.core.errors import RadlabError
from radlab.core.io.locks import LOCK_FILE, locked


@pytest.mark.parametrize(
    ("first", "second", "refused"),
    [(False, False, True), (False, True, True), (True, False, True), (True, True, False)],
)
def test_exclusive_excludes_and_shared_shares(tmp_path, first, second, refused):
    with locked(tmp_path, shared=first):
        if refused:
            with (
                pytest.raises(RadlabError, match="busy here"),
                locked(tmp_path, shared=second, wait=False, busy="busy here"),
            ):
                pass
        else:
            with locked(tmp_path, shared=second, wait=False):
                pass
    assert sorted(os.listdir(tmp_path)) == []  # no lock file left on a local file system


def test_where_a_folder_cannot_be_locked_a_lock_file_inside_it_is(tmp_path, monkeypatch):
    real = fcntl.flock

    def like_nfs(fd, mode):
        if stat.S_ISDIR(os.fstat(fd).st_mode) and mode & fcntl.LOCK_EX:
            raise OSError(errno.EBADF, "Bad file descriptor")
        return real(fd, mode)

    monkeypatch.setattr(fcntl, "flock", like_nfs)
    with locked(tmp_path), pytest.raises(RadlabError), locked(tmp_path, wait=False):
        pass
    assert (tmp_path / LOCK_FILE).is_file()


def test_where_nothing_can_be_locked_radlab_warns_once_and_goes_on(tmp_path, monkeypatch, capsys):
    def like_lustre(fd, mode):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", like_lustre)
    for _ in range(2):
        with locked(tmp_path):
            pass
    assert capsys.readouterr().err.count("cannot lock (Function not implemented)") == 1
