from radlab.core.engine.callbacks import read_history
from radlab.core.engine.driver import train
from radlab.core.task import get_task
from radlab.tasks.pneumonia.data import fold_ids
from radlab.tasks.pneumonia.synth import synthesize_pneumonia


def test_folds_are_stratified_on_the_class_and_disjoint(tiny_pneumonia):
    config = get_task("pneumonia").load_config("cpu-small")
    seen = []
    for fold in range(4):
        train_ids, valid_ids = fold_ids(
            tiny_pneumonia, config.model_copy(update={"train": config.train.model_copy(update={"fold": fold})})
        )
        assert not set(train_ids) & set(valid_ids)
        seen += valid_ids
    assert sorted(seen) == sorted(set(seen)) and len(seen) == len(train_ids) + len(valid_ids)


def test_training_lowers_the_loss_and_beats_chance(tmp_path, one_thread):
    synthesize_pneumonia(tmp_path / "data", patients=200, seed=5, size=128, workers=2)
    metrics = train(
        get_task("pneumonia"),
        tmp_path / "data",
        tmp_path / "run",
        "cpu-small",
        [
            "data.image_size=128",
            "train.max_epochs=10",
            "train.early_stopping_patience=null",
            "data.num_workers=1",
            "train.progress=quiet",
        ],
    )
    losses = [float(row["train/loss"]) for row in read_history(tmp_path / "run" / "history.csv")]
    assert losses[-1] < losses[0]
    assert metrics["map"] > 0.05, metrics  # chance is about 0: a random box rarely reaches IoU 0.4


def test_folds_under_ddp_hold_every_patient_out_once_and_the_sweep_sees_both_ranks(tiny):
    """Each fold of the 2-fold ensemble trained on 2 gloo processes (conftest's factory); the threshold sweep
    sees every held-out image once. Predicting with the ensemble is the contract suite's check."""
    import json

    out = tiny.folds("pneumonia")
    held_out = []
    for k in range(2):
        fold = out / f"fold{k}"
        split = json.loads((fold / "split.json").read_text())
        assert (split["fold"], split["folds"]) == (k, 2)
        detections = json.loads((fold / "valid_detections.json").read_text())
        assert len(detections) == len(split["valid"])  # both ranks' images, the padding repeat dropped
        assert sorted(p.name for p in fold.iterdir() if p.suffix == ".tmp") == []
        held_out += split["valid"]
    assert sorted(held_out) == sorted(set(held_out))  # every patient held out once
