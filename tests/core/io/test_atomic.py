import pytest

from radlab.core.io.atomic import atomic_path, atomic_write_text


@pytest.mark.parametrize("durable", [True, False])
def test_replaces_the_file_whole(tmp_path, durable):
    target = tmp_path / "out.csv"
    target.write_text("old")
    with atomic_path(target, durable=durable) as tmp:
        tmp.write_text("new")
        assert target.read_text() == "old"
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.csv"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_creates_missing_folders(tmp_path):
    atomic_write_text(tmp_path / "a" / "b" / "c.txt", "x")
    assert (tmp_path / "a" / "b" / "c.txt").read_text() == "x"


def test_a_symlinked_output_replaces_its_target_and_stays_a_link(tmp_path):
    """Finding 1: the link used to become a plain file while its target kept stale data."""
    (tmp_path / "shared").mkdir()
    real, link = tmp_path / "shared" / "real.csv", tmp_path / "link.csv"
    real.write_text("old")
    link.symlink_to(real)
    atomic_write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == ["real.csv"]


def test_a_fifo_output_is_written_through_not_replaced(tmp_path):
    import os
    import stat
    import threading

    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    atomic_write_text(fifo, "rows\n")
    reader.join(timeout=10)
    assert received == ["rows\n"] and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_full_device_is_an_error_naming_it_and_the_device_stays(tmp_path):
    import os
    import stat

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    with pytest.raises(OSError, match="No space left") as caught:
        atomic_write_text("/dev/full", "x" * 100_000)
    assert caught.value.filename == "/dev/full" and stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_folder_is_refused_as_an_output(tmp_path):
    from radlab.core.errors import RadlabDataError

    with pytest.raises(RadlabDataError, match="is a folder"):
        atomic_write_text(tmp_path, "x")


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o755])
def test_an_existing_output_keeps_its_permissions(tmp_path, mode):
    """Finding 25: a 0600 output used to become world-readable 0644."""
    target = tmp_path / "out.csv"
    target.write_text("old")
    target.chmod(mode)
    atomic_write_text(target, "new")
    assert target.stat().st_mode & 0o777 == mode and target.read_text() == "new"


def test_a_new_output_follows_the_umask(tmp_path):
    import os

    before = os.umask(0o077)
    try:
        atomic_write_text(tmp_path / "new.csv", "x")
    finally:
        os.umask(before)
    assert (tmp_path / "new.csv").stat().st_mode & 0o777 == 0o600
