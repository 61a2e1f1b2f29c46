import numpy as np

from radlab.core.engine.callbacks import read_history
from radlab.core.engine.driver import train
from radlab.core.engine.run_dir import RunDir
from radlab.core.task import get_task
from radlab.tasks.mrnet.synth import synthesize_mrnet
from tests.conftest import TINY_MRNET_TRAIN, run_cli


def test_run_directory_holds_units_fusion_and_metrics(tiny_mrnet_run):
    run = RunDir(tiny_mrnet_run)
    for name in ("config.yaml", "fusion.json", "metrics.json", "history.csv"):
        assert run.file(name).is_file(), name
    for plane in ("axial", "coronal", "sagittal"):
        unit = run.root / "units" / plane
        assert (unit / "model.safetensors").is_file() and (unit / "checkpoints" / "last.safetensors").is_file()
    assert {row["unit"] for row in read_history(run.history)} == {"axial", "coronal", "sagittal"}
    metrics = run.read_json("metrics.json")
    assert set(metrics["valid"]) == {"Abnormal_AUROC", "ACL_AUROC", "Meniscus_AUROC", "Average_AUROC"}
    assert not list(tiny_mrnet_run.rglob("*.pkl")) and not list(tiny_mrnet_run.rglob("*.pth"))


def test_resume_skips_finished_units(tiny_mrnet, tiny_mrnet_run):
    result = run_cli("mrnet", "train", "--data-root", tiny_mrnet, "--out", tiny_mrnet_run, "--resume")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("finished earlier, skipped") == 3


def test_planes_and_tasks_subsets_with_out_of_fold_fusion(tiny_mrnet, tmp_path):
    metrics = train(
        get_task("mrnet"),
        tiny_mrnet,
        tmp_path / "run",
        "paper",
        [
            *TINY_MRNET_TRAIN,
            "model.backbone=test_resnet",
            "model.pretrained=false",
            "train.planes=[sagittal]",
            "train.tasks=[acl]",
            "fusion.source=oof",
            "fusion.folds=2",
        ],
    )
    units = sorted(p.name for p in (tmp_path / "run" / "units").iterdir())
    assert units == ["acl-sagittal"]
    assert sorted(p.name for p in (tmp_path / "run" / "units" / "acl-sagittal").glob("fold*")) == ["fold0", "fold1"]
    fusion = RunDir(tmp_path / "run").read_json("fusion.json")
    assert fusion["source"] == "oof" and list(fusion["tasks"]) == ["acl"]
    assert set(fusion["tasks"]["acl"]) == {"sagittal"}
    assert metrics["valid"]["Abnormal_AUROC"] is None and metrics["valid"]["Meniscus_AUROC"] is None


def test_training_beats_chance_where_the_finding_is_visible(tmp_path, one_thread):
    synthesize_mrnet(tmp_path / "data", exams=72, seed=11, workers=2)
    metrics = train(
        get_task("mrnet"),
        tmp_path / "data",
        tmp_path / "run",
        "cpu-small",
        [
            "data.image_size=48",
            "data.num_workers=1",
            "train.planes=[sagittal]",
            "train.max_epochs=6",
            "train.early_stopping_patience=null",
            "train.progress=quiet",
        ],
    )
    history = read_history(tmp_path / "run" / "units" / "sagittal" / "history.csv")
    losses = [float(row["train/loss"]) for row in history]
    assert losses[-1] < losses[0]
    assert metrics["valid"]["Average_AUROC"] > 0.7, metrics
    assert np.isfinite(metrics["per_plane"]["acl"]["sagittal"])


def test_folds_under_ddp_validate_on_disjoint_held_out_exams(tiny, tiny_mrnet):
    """Each fold of conftest's 2-fold ensemble trained its units on 2 gloo processes and validated on its
    held-out training exams; rank 0 alone fitted the fusion. The ensemble's predictions are the contract
    suite's check."""
    from radlab.core.report import read_case_table
    from radlab.tasks.mrnet.formats import read_split_labels

    out = tiny.folds("mrnet")
    train_ids, _ = read_split_labels(tiny_mrnet, "train")
    held_out = [read_case_table(out / f"fold{k}" / "valid_predictions.csv").cases for k in range(2)]
    assert sorted(held_out[0] + held_out[1]) == sorted(train_ids) and not set(held_out[0]) & set(held_out[1])
    for k in range(2):
        assert (out / f"fold{k}" / "fusion.json").is_file() and not list((out / f"fold{k}").rglob("*.tmp"))
