from radlab.core.engine.callbacks import read_history
from radlab.tasks.pneumonia.config import load_pneumonia_config
from radlab.tasks.pneumonia.synth import synthesize_pneumonia
from radlab.tasks.pneumonia.train import fold_ids, train


def test_folds_are_stratified_on_the_class_and_disjoint(tiny_pneumonia):
    config = load_pneumonia_config("cpu-small")
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
