import json
from pathlib import Path

import pytest

from radlab.core.engine.driver import train
from radlab.core.task import get_task
from radlab.tasks.ich.formats import SUBTYPES, TEST_IMAGES, read_submission
from radlab.tasks.ich.synth import TEST_TRUTH
from tests.conftest import retrain_weights, run_cli


def test_run_directory_and_both_validation_scores(tiny_ich_run):
    metrics = json.loads((tiny_ich_run / "metrics.json").read_text())
    for stage in ("slice_cnn", "sequence"):
        assert set(metrics[stage]) == {"weighted_log_loss", *(f"{s}_log_loss" for s in SUBTYPES)}
    assert metrics["sequence_epochs_averaged"] == 2
    for path in (
        "slice/model.safetensors",
        "embeddings/train.npy",
        "embeddings/valid.json",
        "sequence/snapshots/epoch_01.safetensors",
        "sequence/snapshots/epoch_02.safetensors",
    ):
        assert (tiny_ich_run / path).is_file(), path
    assert not list(tiny_ich_run.rglob("*.pkl")) and not list(tiny_ich_run.rglob("*.pt"))


def test_sequence_stage_alone_from_cached_embeddings(tiny_ich, tiny_ich_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_ich_run, run)
    cached = {p.name: p.read_bytes() for p in (run / "embeddings").iterdir()}
    sets = ["sequence.max_epochs=3", "sequence.keep_epochs=1"]
    metrics = train(get_task("ich"), tiny_ich, run, None, sets, stage="sequence")
    assert metrics["sequence_epochs_averaged"] == 1
    assert sorted(p.name for p in (run / "sequence" / "snapshots").iterdir()) == ["epoch_03.safetensors"]
    assert {p.name: p.read_bytes() for p in (run / "embeddings").iterdir()} == cached  # not embedded again
    assert "the cached embeddings match these weights and slices" in capsys.readouterr().err


def _reverse_image_blocks(labels_csv: Path) -> None:
    """The same images and labels, the six rows of each image in reverse image order."""
    header, *rows = labels_csv.read_text().splitlines()
    blocks = [rows[k : k + 6] for k in range(0, len(rows), 6)]
    labels_csv.write_text("\n".join([header, *(row for block in reversed(blocks) for row in block)]) + "\n")


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda data, run: _reverse_image_blocks(data / "stage_2_train.csv"), "made from other slice weights"),
        (lambda data, run: (run / "embeddings" / "train.npy").write_bytes(b"\x93NUMPY"), "damaged (truncated"),
        (
            lambda data, run: retrain_weights(run / "slice" / "model.safetensors", lambda t: t + 0.01),
            "made from other slice weights",
        ),
    ],
)
def test_cached_embeddings_that_no_longer_match_are_made_again(tiny_ich, tiny_ich_run, tmp_path, capsys, damage, why):
    """Finding 7: a reordered label table paired every embedding with another slice's labels (exit 0);
    finding 23: a truncated embeddings file gave a ValueError traceback."""
    import shutil

    from radlab.core.engine.run_dir import RunDir
    from radlab.core.io.cache import content_key
    from radlab.tasks.ich.data import fold_rows, read_training_table
    from radlab.tasks.ich.model import cached_embedded, embedding_source

    data, run = tmp_path / "data", tmp_path / "run"
    shutil.copytree(tiny_ich, data)
    shutil.copytree(tiny_ich_run, run)
    damage(data, run)
    train(get_task("ich"), data, run, None, ["sequence.max_epochs=1", "sequence.keep_epochs=1"], stage="sequence")
    warned = capsys.readouterr().err
    assert f"embeddings/train.json: {why}" in warned and "embedding again" in warned
    config = get_task("ich").run_config(run)
    table = read_training_table(data)
    rows, _ = fold_rows(table, config)
    paths = [table.infos[i].path for i in rows]
    source = embedding_source(config, content_key(RunDir(run / "slice").weights), paths)
    embedded, reason = cached_embedded(run / "embeddings", "train", [p.stem for p in paths], source)
    assert embedded is not None, reason  # the cache now holds what these rows would be embedded as


def test_submission_has_six_rows_per_readable_test_image_and_round_trips(tiny_ich_run, tiny_ich, tmp_path):
    images = sorted(p.stem for p in (tiny_ich / TEST_IMAGES).glob("*.dcm"))
    result = run_cli("ich", "predict", tiny_ich / TEST_IMAGES, tmp_path / "sub.csv", "--model", tiny_ich_run)
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "sub.csv").read_text().splitlines()
    assert lines[0] == "ID,Label" and len(lines) == 1 + 6 * len(images)
    predicted, probs = read_submission(tmp_path / "sub.csv")
    assert sorted(predicted) == images and probs.min() >= 1e-5 and probs.max() <= 1 - 1e-5
    scored = run_cli("ich", "evaluate", tiny_ich / TEST_TRUTH, tmp_path / "sub.csv")
    assert scored.returncode == 0 and json.loads(scored.stdout)["images"] == len(images)


def test_an_unreadable_test_file_is_left_out_with_a_warning(tiny_ich_run, tiny_ich, tmp_path):
    import shutil

    folder = tmp_path / "in"
    shutil.copytree(tiny_ich / TEST_IMAGES, folder)
    broken = sorted(folder.glob("*.dcm"))[0]
    broken.write_bytes(broken.read_bytes()[:-500])
    result = run_cli("ich", "predict", folder, tmp_path / "sub.csv", "--model", tiny_ich_run)
    assert result.returncode == 0 and broken.name in result.stderr
    predicted, _ = read_submission(tmp_path / "sub.csv")
    assert broken.stem not in predicted and len(predicted) == len(list(folder.glob("*.dcm"))) - 1
    strict = run_cli("ich", "predict", folder, tmp_path / "s.csv", "--model", tiny_ich_run, "--strict")
    assert strict.returncode == 1 and not (tmp_path / "s.csv").exists()


def test_training_learns_and_the_sequence_model_beats_the_slice_cnn(tmp_path, one_thread):
    import numpy as np

    from radlab.tasks.ich.evaluate import weighted_log_loss
    from radlab.tasks.ich.formats import TRAIN_CSV, read_labels
    from radlab.tasks.ich.synth import synthesize_ich

    synthesize_ich(tmp_path / "data", series=40, seed=1, size=64, workers=2)
    metrics = train(
        get_task("ich"),
        tmp_path / "data",
        tmp_path / "run",
        "cpu-small",
        [
            "data.image_size=64",
            "data.num_workers=0",
            "train.max_epochs=8",
            "train.progress=quiet",
            "sequence.progress=quiet",
        ],
    )
    _, labels = read_labels(tmp_path / "data" / TRAIN_CSV)
    constant = weighted_log_loss(labels, np.tile(labels.mean(axis=0), (len(labels), 1)))  # chance level
    slice_cnn, sequence = metrics["slice_cnn"]["weighted_log_loss"], metrics["sequence"]["weighted_log_loss"]
    assert slice_cnn < constant * 0.8, (slice_cnn, constant)
    assert sequence < slice_cnn, metrics


def test_folds_under_ddp_train_the_slice_cnn_on_both_ranks_and_the_rest_on_rank_0(tiny):
    """The 2-fold ensemble of conftest's factory: the slice CNN trained on 2 gloo processes, rank 0 alone
    embedded and trained the sequence model. Predicting with the ensemble is the contract suite's check."""
    out = tiny.folds("ich")
    manifest = json.loads((out / "ensemble.json").read_text())
    assert manifest["members"] == ["fold0", "fold1"] and set(manifest["summary"]) == {"slice_cnn", "sequence"}
    for k in range(2):
        fold = out / f"fold{k}"
        assert f"fold: {k}" in (fold / "config.yaml").read_text()
        assert (fold / "sequence" / "snapshots" / "epoch_02.safetensors").is_file()
        assert json.loads((fold / "metrics.json").read_text())["sequence_epochs_averaged"] == 2
