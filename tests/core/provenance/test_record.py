import json
import time

import pytest

from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabDataError
from radlab.core.provenance.manifest import sha256_file
from radlab.core.provenance.record import (
    ENVIRONMENT,
    changed_weights_allowed,
    check_weights,
    finish_record,
    seeds,
    start_record,
    weights_files,
)

FILES = [
    "model.safetensors",
    "slice/model.safetensors",
    "sequence/snapshots/epoch_01.safetensors",
    "kept/epoch2/model.safetensors",
    "checkpoints/last.safetensors",
    "units/a/checkpoints/best.safetensors",
    ".model.safetensors.tmp",
    ".tmpab12.safetensors",
    "nested/model.safetensors",
    "model.onnx",
]


def _run(tmp_path, files=FILES):
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(name.encode())
    (tmp_path / "nested" / ENVIRONMENT).write_text("{}")  # a run of its own: its weights are its record's
    return RunDir(tmp_path)


def test_the_weights_files_are_the_models_not_checkpoints_temporaries_or_nested_runs(tmp_path):
    run = _run(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in weights_files(run.root)] == [
        "model.safetensors",
        "kept/epoch2/model.safetensors",
        "sequence/snapshots/epoch_01.safetensors",
        "slice/model.safetensors",
    ]


def test_a_record_lists_every_weights_file_when_the_training_ends(tmp_path):
    run = _run(tmp_path / "run")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "labels.csv").write_text("a,1\n")
    config = {"train": {"seed": 3}, "sequence": {"seed": 4}, "model": {"seedling": 1}}
    start_record(run, config, tmp_path / "data", True)
    started = json.loads((run.root / ENVIRONMENT).read_text())
    assert (started["status"], started["weights"], started["finished"]) == ("training", {}, None)
    assert started["seeds"] == {"train.seed": 3, "sequence.seed": 4} and started["deterministic"] is True
    assert started["data"]["label_files"]["labels.csv"]["bytes"] == 4
    finished = finish_record(run, time.monotonic())
    assert finished["status"] == "finished" and finished["finished"] and finished["seconds"] >= 0
    assert finished["weights"] == {p.relative_to(run.root).as_posix(): sha256_file(p) for p in weights_files(run.root)}
    assert json.loads((run.root / ENVIRONMENT).read_text()) == finished
    start_record(run, {}, tmp_path / "data", False)  # --resume or --stage: a new training of the run
    again = json.loads((run.root / ENVIRONMENT).read_text())
    assert again["weights"] == {} and [e["status"] for e in again["earlier"]] == ["finished"]


@pytest.mark.parametrize("key", [("train", "seed"), ("data", "split_seed")])
def test_seeds_are_every_key_ending_in_seed(key):
    section, name = key
    assert seeds({section: {name: 7, "lr": 0.1}}) == {f"{section}.{name}": 7}


def _recorded(tmp_path, status="finished", fmt="radlab-environment/1"):
    weights = tmp_path / "run" / "slice" / "model.safetensors"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"trained")
    record = {"format": fmt, "status": status, "weights": {"slice/model.safetensors": sha256_file(weights)}}
    (tmp_path / "run" / ENVIRONMENT).write_text(json.dumps(record))
    return weights


@pytest.mark.parametrize(
    ("status", "fmt", "changed", "allowed", "outcome"),
    [
        ("finished", "radlab-environment/1", False, False, "ok"),
        ("finished", "radlab-environment/1", True, False, "refused"),
        ("finished", "radlab-environment/1", True, True, "warned"),
        ("training", "radlab-environment/1", True, False, "ok"),  # killed, or still training: no claim made
        ("finished", "someone-else/1", True, False, "ok"),  # not radlab's file
    ],
)
def test_changed_weights_are_refused_or_warned_about(tmp_path, capsys, status, fmt, changed, allowed, outcome):
    weights = _recorded(tmp_path, status, fmt)
    if changed:
        weights.write_bytes(b"tampered")
    with changed_weights_allowed(allowed):
        if outcome == "refused":
            with pytest.raises(RadlabDataError) as refused:
                check_weights(weights)
            assert str(refused.value).startswith(f"{weights}: changed since training: its sha256 is ")
            assert str(refused.value).endswith("(pass --allow-changed-weights to use it anyway)")
        else:
            check_weights(weights)
    warned = capsys.readouterr().err
    assert ("used anyway (--allow-changed-weights)" in warned) == (outcome == "warned")


def test_weights_no_record_lists_are_not_checked(tmp_path):
    weights = _recorded(tmp_path)
    other = weights.parent / "added.safetensors"
    other.write_bytes(b"added later")
    check_weights(other)
    (tmp_path / "old").mkdir()  # a run trained before records existed
    (tmp_path / "old" / "model.safetensors").write_bytes(b"old")
    check_weights(tmp_path / "old" / "model.safetensors")


def test_a_damaged_record_is_one_line_naming_it(tmp_path):
    weights = _recorded(tmp_path)
    (tmp_path / "run" / ENVIRONMENT).write_text('{"format": NaN')
    with pytest.raises(RadlabDataError, match=rf"^{tmp_path / 'run' / ENVIRONMENT}: not valid JSON"):
        check_weights(weights)


def test_a_resumed_training_records_the_weights_it_ends_with(tiny, tmp_path, one_thread):
    """Through the driver (the toy task): a first training of one epoch, then --resume to two; the record is
    that of the second, the first under "earlier"."""
    from radlab.core.engine.driver import train
    from radlab.core.task import get_task

    task, data, run = get_task("toy"), tiny.data("toy"), tmp_path / "run"
    train(task, data, run, "cpu-small", ["train.max_epochs=1", "train.progress=quiet"])
    first = json.loads((run / ENVIRONMENT).read_text())
    assert first["weights"] == {"model.safetensors": sha256_file(run / "model.safetensors")}
    train(task, data, run, None, ["train.max_epochs=2", "train.early_stopping_patience=null"], resume=True)
    second = json.loads((run / ENVIRONMENT).read_text())
    assert second["status"] == "finished" and second["weights"] == {
        "model.safetensors": sha256_file(run / "model.safetensors")
    }
    assert [(e["started"], e["status"]) for e in second["earlier"]] == [(first["started"], "finished")]
    assert list(second["data"]["label_files"]) == ["labels.csv"]
