"""A file or a folder as input: the files to read, or one clear error."""

from __future__ import annotations

import pytest

from radlab.core.errors import RadlabDataError
from radlab.core.io.inputs import input_files


@pytest.mark.parametrize(
    ("names", "given", "expected"),
    [
        (["b.PNG", "a.png", "c.txt"], ".", ["a.png", "b.PNG"]),
        (["b.png", "c.txt"], "c.txt", ["c.txt"]),  # a file is taken as given, whatever its suffix
    ],
)
def test_files_of_a_folder_or_the_file_itself(tmp_path, names, given, expected):
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    found = input_files(tmp_path / given, (".png", ".jpg"), "radiograph")
    assert [p.name for p in found] == expected


@pytest.mark.parametrize(("make", "message"), [(False, "no such file or folder"), (True, r"holds no radiograph")])
def test_missing_or_empty_input_is_a_data_error(tmp_path, make, message):
    target = tmp_path / "in"
    if make:
        target.mkdir()
        (target / "notes.txt").write_text("x")
    with pytest.raises(RadlabDataError, match=message):
        input_files(target, (".png",), "radiograph")


def _special(tmp_path, kind: str, suffix: str):
    import os

    path = tmp_path / f"special{suffix}"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    return path


def _reads(name: str):
    from radlab.core.io import dicom, images, inspect, volumes

    return {
        "read_image": (images.read_image, ".png"),
        "read_volume": (volumes.read_volume, ".npy"),
        "read_dicom": (dicom.read_dicom, ".dcm"),
        "read_header": (dicom.read_header, ".dcm"),
        "inspect_file": (lambda p: _raise(inspect.inspect_file(p)), ".dcm"),
    }[name]


def _raise(entry: dict):
    raise RadlabDataError(entry["path"], entry.get("error", "no error"))


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
@pytest.mark.parametrize("reader", ["read_image", "read_volume", "read_dicom", "read_header", "inspect_file"])
def test_fifos_and_devices_are_refused_at_once_not_read_forever(tmp_path, reader, kind):
    """Finding 14: a FIFO named fifo.dcm, or a link to /dev/zero, used to hang every reader."""
    import threading

    read, suffix = _reads(reader)
    path = _special(tmp_path, kind, suffix)
    caught: list[BaseException] = []

    def attempt():
        try:
            read(path)
        except BaseException as error:
            caught.append(error)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout=20)
    if thread.is_alive() and kind == "fifo":
        with open(path, "wb"):  # unblock the reader so the thread can end
            pass
    assert not thread.is_alive(), f"{reader} still reading {kind} after 20 s"
    assert len(caught) == 1 and isinstance(caught[0], RadlabDataError)
    assert "not a regular file" in str(caught[0]) and path.name in str(caught[0])


def test_a_dicom_folder_is_read_recursively_and_case_insensitively(tmp_path):
    """Finding 21: `X.DCM` and subfolders used to be skipped silently."""
    from radlab.core.io.dicom import list_dicom_folder

    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    for name in ("b.dcm", "A.DCM", "sub/c.Dcm", "sub/deeper/d.dcm", "notes.txt", "sub/e.dcm.bak"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "folder.dcm").mkdir()
    found = [p.relative_to(tmp_path).as_posix() for p in list_dicom_folder(tmp_path)]
    assert found == ["A.DCM", "b.dcm", "sub/c.Dcm", "sub/deeper/d.dcm"]


def test_two_dicoms_of_one_name_in_different_subfolders_are_a_data_error(tmp_path):
    from radlab.core.io.dicom import list_dicom_folder

    for name in ("a/ID_1.dcm", "b/ID_1.DCM"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(RadlabDataError, match="same name as"):
        list_dicom_folder(tmp_path)
