import json
import os
import subprocess
import sys
import time

import pytest

from radlab.core.engine.callbacks import read_history
from radlab.core.engine.driver import train as train_task
from radlab.core.engine.run_dir import RunDir
from radlab.core.task import get_task
from radlab.tasks.mura.data import MuraDataset
from radlab.tasks.mura.synth import synthesize_mura
from tests.conftest import TINY_TRAIN, run_cli


def train(*args, **kwargs):
    return train_task(get_task("mura"), *args, **kwargs)


def _sets(*overrides):
    return [arg for item in (*TINY_TRAIN, *overrides) for arg in ("--set", item)]


def test_run_directory_holds_what_the_spec_lists(tiny_run):
    run = RunDir(tiny_run)
    for path in (run.config, run.weights, run.metrics, run.history, run.last_checkpoint, run.best_checkpoint):
        assert path.is_file(), path
    assert sorted(p.suffix for p in tiny_run.rglob("*") if p.is_file()) == [
        ".csv",
        ".csv",
        ".json",
        ".json",
        ".json",
        ".json",
        ".safetensors",
        ".safetensors",
        ".safetensors",
        ".yaml",
    ]
    assert [row["epoch"] for row in read_history(run.history)] == ["1", "2"]
    metrics = run.read_json("metrics.json")
    assert {"Overall", "Wrist"} <= set(metrics["study_level"])
    assert {"kappa", "auroc", "sensitivity", "specificity"} <= set(metrics["study_level"]["Overall"])


def test_existing_run_is_refused_without_resume(tiny_mura, tiny_run):
    result = run_cli("mura", "train", "--data-root", tiny_mura, "--out", tiny_run, "--config", "cpu-small")
    assert result.returncode == 1 and "--resume" in result.stderr


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--set", "train.lrr=1"], 2, "unknown key 'train.lrr'"),
        (["--config", "nope"], 2, "unknown preset 'nope'"),
    ],
)
def test_config_errors_exit_2_before_anything_is_written(tiny_mura, tmp_path, extra, code, message):
    result = run_cli("mura", "train", "--data-root", tiny_mura, "--out", tmp_path / "run", *extra)
    assert result.returncode == code and message in result.stderr
    assert not (tmp_path / "run").exists()


def test_training_lowers_the_loss_and_beats_chance(tmp_path, one_thread):
    synthesize_mura(tmp_path / "data", studies=320, seed=3, workers=2)
    metrics = train(
        tmp_path / "data",
        tmp_path / "run",
        "cpu-small",
        [
            "train.max_epochs=8",
            "train.early_stopping_patience=null",
            "data.num_workers=1",
            "train.progress=quiet",
        ],
    )
    history = read_history(tmp_path / "run" / "history.csv")
    losses = [float(row["train/loss"]) for row in history]
    assert losses[-1] < losses[0]
    overall = metrics["study_level"]["Overall"]
    assert overall["auroc"] > 0.8, overall
    assert overall["kappa"] > 0.4, overall


def _wait_for(condition, timeout=180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_training_from_the_cache_repeats_training_from_files(tiny_mura, tmp_path, one_thread):
    """Same seeds, same pixels, same augmentation draws: the cache changes nothing but the speed."""
    histories = []
    for name, extra in (("files", ()), ("cached", (f"data.cache_dir={tmp_path / 'cache'}",))):
        train(tiny_mura, tmp_path / name, "cpu-small", [*TINY_TRAIN, "train.max_epochs=1", *extra])
        histories.append([row["train/loss"] for row in read_history(tmp_path / name / "history.csv")])
    assert histories[0] == histories[1]
    assert list((tmp_path / "cache").glob("prep-*/index.json"))


class _Marker:
    """Unpickling this creates a file: the proof that a pickle was executed."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


TRACE_TRAINING_INDICES = """
import json, os, sys
from radlab.tasks.mura.recipe import MuraRecipe

original = MuraRecipe.training_step

def traced(self, batch, batch_idx):
    rank = self.trainer.global_rank
    with open(os.path.join(os.environ["TRACE_DIR"], f"rank{rank}.jsonl"), "a") as handle:
        handle.write(json.dumps([self.current_epoch, batch["index"].tolist()]) + "\\n")
    return original(self, batch, batch_idx)

MuraRecipe.training_step = traced
from radlab.cli import main
main()
"""


def test_torchrun_ddp_on_the_cpu_with_a_shared_cache_writes_one_run_directory(tiny_mura, tmp_path):
    """`torchrun --standalone --nproc-per-node 2 ... --devices 2 --strategy ddp --set data.cache_dir=DIR`: two
    processes (gloo) share one preprocessing cache (finding 3: each rank deleted the other's store, and this
    always crashed), train on disjoint shards of the training images, and the run directory is rank 0's alone.
    (Lightning-started DDP, `--devices 2` without torchrun, trains conftest's fold ensembles.)"""
    run, cache = tmp_path / "run", tmp_path / "cache"
    script = tmp_path / "traced_radlab.py"  # radlab's CLI with training batches traced; torchrun runs it per rank
    script.write_text(TRACE_TRAINING_INDICES)
    images = len(MuraDataset(tiny_mura, "train").paths)
    shard = -(-images // 2)  # one batch per rank: none dropped, so each rank's whole shard is seen
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script),
         "mura", "train", "--data-root", str(tiny_mura), "--out", str(run), "--config", "cpu-small",
         *_sets("train.max_epochs=1", f"train.batch_size={shard}", f"data.cache_dir={cache}"),
         "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "TRACE_DIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    stores = list(cache.glob("prep-*"))
    assert len(stores) == 1 and len(list(stores[0].glob("data-*.npy"))) == 1
    seen = []
    for rank in (0, 1):
        lines = (tmp_path / f"rank{rank}.jsonl").read_text().splitlines()
        seen.append([i for line in lines for i in json.loads(line)[1]])
    overlap = set(seen[0]) & set(seen[1])
    assert set(seen[0]) | set(seen[1]) == set(range(images))  # together: every training image
    assert len(seen[0]) == len(seen[1]) == shard  # each: half (the sampler pads the shorter shard)
    assert len(overlap) == 2 * shard - images  # shared: only that padding
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in run.iterdir())
    assert names == sorted(
        ["checkpoints", "config.yaml", "data.json", "data_stats.json", "environment.json", "history.csv",
         "metrics.json", "model.safetensors", "valid_predictions.csv"]
    )  # fmt: skip
    assert not list(run.rglob("*.tmp")) and [row["epoch"] for row in read_history(run / "history.csv")] == ["1"]
    # Validation gathered from both ranks: each study's probability averages all its images, as predict does.
    from radlab.core.report import read_case_table
    from radlab.tasks.mura.formats import read_probabilities, split_csvs

    probs = tmp_path / "probs.csv"
    paths_csv = split_csvs(tiny_mura, "valid")[0]
    predicted = run_cli(
        "mura", "predict", paths_csv, tmp_path / "out.csv", "--model", run, "--data-root", tiny_mura,
        "--probs", probs, "--workers", "0",
    )  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr
    expected = {row.study: row.probability for row in read_probabilities(probs)}
    table = read_case_table(run / "valid_predictions.csv")
    assert sorted(table.cases) == sorted(expected)
    for case, probability in zip(table.cases, table.probs[:, 0], strict=True):
        assert probability == pytest.approx(expected[case], abs=1e-4)


def test_folds_are_grouped_by_patient_and_the_codalab_bundle_of_an_ensemble_predicts_as_it(tiny, tiny_mura, tmp_path):
    """conftest's 2-fold ensemble (trained under 2-process DDP): the held-out folds partition the training
    studies with no patient on both sides; the ensemble's CodaLab bundle gives the ensemble's labels."""
    from radlab.core.report import read_case_table
    from radlab.tasks.mura.data import load_split
    from radlab.tasks.mura.formats import split_csvs
    from radlab.tasks.mura.predict import predict_csv

    out = tiny.folds("mura")
    train_studies = set(load_split(tiny_mura, "train").studies)
    held_out = [set(read_case_table(out / f"fold{k}" / "valid_predictions.csv").cases) for k in range(2)]
    assert set.union(*held_out) == train_studies and sum(map(len, held_out)) == len(train_studies)
    for k, studies in enumerate(held_out):  # no patient on both sides of a fold
        patients = {s.rstrip("/").split("/")[-2] for s in studies}
        trained_on = {s.rstrip("/").split("/")[-2] for s in train_studies - studies}
        assert not patients & trained_on, k
        assert f"fold: {k}" in (out / f"fold{k}" / "config.yaml").read_text()

    paths_csv = split_csvs(tiny_mura, "valid")[0]
    predict_csv(paths_csv, tmp_path / "ensemble.csv", out, tiny_mura, num_workers=0)

    # The CodaLab bundle of an ensemble carries every fold and predicts as the ensemble does.
    bundle = run_cli("codalab", "mura", out, tmp_path / "bundle")
    assert bundle.returncode == 0, bundle.stderr
    assert sorted(p.name for p in (tmp_path / "bundle" / "src" / "model").iterdir()) == [
        "ensemble.json", "fold0", "fold1"
    ]  # fmt: skip
    from radlab.tasks.mura.formats import read_image_paths

    inputs = tmp_path / "codalab_in.csv"
    inputs.write_text("".join(f"{tiny_mura / image.path}\n" for image in read_image_paths(paths_csv)))
    ran = subprocess.run(
        [sys.executable, "src/predict.py", str(inputs), str(tmp_path / "codalab_out.csv")],
        cwd=tmp_path / "bundle", capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    labels = [line.rsplit(",", 1)[1] for line in (tmp_path / "codalab_out.csv").read_text().splitlines()]
    assert labels == [line.rsplit(",", 1)[1] for line in (tmp_path / "ensemble.csv").read_text().splitlines()]
    refused = run_cli("report", out)
    assert refused.returncode == 1 and "is a --folds ensemble" in refused.stderr


def test_torchrun_starts_the_ranks_and_lightning_joins_them(tiny_mura, tmp_path):
    """The README's launch: torchrun (here 2 CPU processes) runs `-m radlab` once per rank; Lightning takes the
    ranks from torchrun's environment instead of starting processes itself."""
    import shutil

    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    run = tmp_path / "run"
    result = subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "radlab", "mura", "train",
         "--data-root", str(tiny_mura), "--out", str(run), "--config", "cpu-small", *_sets("train.max_epochs=1"),
         "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("kept epoch 1") == 1  # rank 0 alone reports
    assert [row["epoch"] for row in read_history(run / "history.csv")] == ["1"]
    assert (run / "model.safetensors").is_file() and not list(run.rglob("*.tmp"))
