import numpy as np
import torch

from radlab.tasks.ich.data import (
    SequenceDataset,
    collate_sequences,
    load_windows,
    read_metadata,
    sequence_features,
    sequences,
)
from radlab.tasks.ich.formats import TRAIN_IMAGES
from radlab.tasks.ich.model import SequenceModel


def test_sequence_features_are_e_and_its_differences():
    e = np.array([[1.0], [3.0], [6.0]])
    assert sequence_features(e).tolist() == [[1, 0, -2], [3, 2, -3], [6, 3, 0]]


def test_series_are_grouped_and_sorted_by_z(tiny_ich):
    paths = sorted((tiny_ich / TRAIN_IMAGES).glob("*.dcm"))
    infos, skipped = read_metadata(paths)
    assert not skipped  # the corrupt file's header reads; its pixels fail later
    groups = sequences(infos)
    assert sum(len(g) for g in groups) == len(infos)
    for group in groups:
        assert len({(infos[i].patient, infos[i].study, infos[i].series) for i in group}) == 1
        z = [infos[i].z for i in group]
        assert z == sorted(z)


def test_a_header_that_cannot_be_read_is_skipped_and_counted(tmp_path, capsys):
    (tmp_path / "ID_bad.dcm").write_text("not dicom")
    infos, skipped = read_metadata([tmp_path / "ID_bad.dcm"])
    assert infos == [] and len(skipped) == 1 and "ID_bad.dcm" in capsys.readouterr().err


def test_windows_of_a_slice(tiny_ich):
    path = next((tiny_ich / TRAIN_IMAGES).glob("*.dcm"))
    image = load_windows(path, 48)
    assert image.shape == (48, 48, 3) and image.dtype == np.uint8


def test_padded_batches_give_the_same_outputs_as_single_series():
    torch.manual_seed(0)
    model = SequenceModel(4).eval()
    embeddings = np.random.default_rng(0).normal(size=(9, 4)).astype(np.float32)
    dataset = SequenceDataset(embeddings, [[0, 1, 2, 3, 4], [5, 6], [7, 8]])
    batch = collate_sequences([dataset[i] for i in range(3)])
    assert batch["mask"].sum() == 9 and batch["features"].shape == (3, 5, 12)
    with torch.no_grad():
        together = model(batch["features"], batch["lengths"])
        for k in range(3):
            alone = collate_sequences([dataset[k]])
            single = model(alone["features"], alone["lengths"])[0]
            assert torch.allclose(together[k, : len(single)], single, atol=1e-5)


def test_cached_slices_equal_decoded_slices_and_keep_the_corrupt_file_flagged(tiny_ich, tmp_path):
    from radlab.tasks.ich.data import SliceDataset, SliceTransform

    paths = sorted((tiny_ich / TRAIN_IMAGES).glob("*.dcm"))
    plain = SliceDataset(paths, 32, SliceTransform())
    cached = SliceDataset(paths, 32, SliceTransform(), cache_dir=tmp_path / "cache")
    errors = 0
    for k in range(len(paths)):
        a, b = plain[k], cached[k]
        assert torch.equal(a["image"], b["image"]) and a["error"] == b["error"]
        errors += bool(a["error"])
    assert errors == 1  # the synthetic set's truncated slice, named the same way both times
    assert len(list((tmp_path / "cache").glob("prep-*/data-*.npy"))) == 1
