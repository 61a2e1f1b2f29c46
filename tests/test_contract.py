"""The contract every registered task keeps, checked over each one (radlab's four and the toy task defined
outside radlab, in tests/toy), in the spirit of scikit-learn's `parametrize_with_checks`.

Each check uses only the Task interface: the task's demo spec (data, predict arguments, inputs, how to read
an output), its tiny training overrides (conftest.TINY) and the command line.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from radlab.core.task import get_task, task_names
from tests.conftest import TINY, retrain_weights, run_cli, run_radlab, tiny_sets

TASKS = task_names()
SPEC_KEYS = {
    "task",
    "reference_items_per_s",
    "radlab_items_per_s",
    "speedup",
    "max_abs_prob_diff",
    "label_agreement",
    "peak_rss_mb",
    "threads",
    "device",
}


def demo(name: str):
    return get_task(name).demo.get()


def predict(name: str, data: Path, runs: list[Path], output: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`radlab NAME predict` on the task's demo input, with every run in `runs` as a --model (in this process:
    the kill and signal tests are the ones that need a process of their own)."""
    models = [arg for run in runs for arg in ("--model", str(run))]
    return run_radlab(
        name, "predict", *demo(name).predict_args(data, runs[0], output), *models, "--workers", "0", *extra
    )


def test_the_toy_task_comes_from_outside_radlab():
    import radlab

    toy = get_task("toy")
    source = Path(sys.modules[toy.package].__file__).resolve()
    assert source.is_relative_to(Path(__file__).resolve().parent / "toy")
    assert not source.is_relative_to(Path(radlab.__file__).resolve().parent)
    assert TASKS[:4] == ["mura", "mrnet", "pneumonia", "ich"] and "toy" in TASKS
    listed = run_cli("--help")
    assert listed.returncode == 0 and "toy" in listed.stdout


@pytest.mark.parametrize("name", TASKS)
def test_round_trip_synth_train_predict_evaluate(name, tmp_path, capsys):
    """The demo: synthetic data, a tiny training, predict through the command line, the official evaluator,
    whose JSON line is the last line on stdout."""
    from radlab.core.demo import run_demo

    tiny = TINY[name]
    result = run_demo(get_task(name), tmp_path, overrides=tiny.train, seed=tiny.seed, **tiny.sizes)
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line and result and (tmp_path / "run" / "config.yaml").is_file()
    assert line == demo(name).evaluate(tmp_path / "data", tmp_path / demo(name).output_name, {}).official


def _wait_for(condition, timeout=300.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def _every_file_parses(run: Path) -> None:
    """Nothing half-written stands under a final name."""
    from radlab.core.engine.checkpoint_io import load_checkpoint_file
    from radlab.core.models import load_weights

    for path in run.rglob("*"):
        # Temporary names are not final ones: radlab's atomic writes end in .tmp, and safetensors' writer
        # stages its file as .tmpXXXXXX beside it (a kill during a checkpoint leaves one).
        if path.name.endswith(".tmp") or path.name.startswith(".tmp") or not path.is_file():
            continue
        if path.parent.name == "checkpoints":
            load_checkpoint_file(path)
        elif path.suffix == ".safetensors":
            load_weights(path)
        elif path.suffix == ".json":
            json.loads(path.read_text())


def _in_progress(run: Path) -> Path | None:
    """The (sub-)run being trained: a last checkpoint beside a history of 3 epochs, its stage not done."""
    from radlab.core.engine.callbacks import read_history

    for checkpoint in sorted(run.rglob("checkpoints/last.safetensors")):
        folder = checkpoint.parent.parent
        if not (folder / "done.json").exists() and len(read_history(folder / "history.csv")) >= 3:
            return folder
    return None


def _long_training(name: str, tiny, run: Path, stderr: int) -> tuple[list, subprocess.Popen[str]]:
    """(its arguments, the process): a training of the task's tiny data with no end in sight, in a session of
    its own (so that the whole group can be killed), Ctrl-C at its default (a background job inherits SIG_IGN)."""
    args = [name, "train", "--data-root", tiny.data(name), "--out", run, "--config", "cpu-small"]
    long = tiny_sets(name, "train.max_epochs=100000", "train.early_stopping_patience=null")
    process = subprocess.Popen(
        [sys.executable, "-m", "radlab", *map(str, args + long)],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    return args, process


@pytest.mark.parametrize("name", TASKS)
def test_resume_after_kill_9_during_training_continues_from_the_last_checkpoint(name, tiny, tmp_path):
    from radlab.core.engine.checkpoint_io import load_checkpoint_file

    run = tmp_path / "run"
    args, process = _long_training(name, tiny, run, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: _in_progress(run) is not None)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    stage = _in_progress(run)
    assert stage is not None
    _every_file_parses(run)
    killed_at = load_checkpoint_file(stage / "checkpoints" / "last.safetensors")["epoch"]

    extra = ["--set", f"train.max_epochs={killed_at + 3}", "--set", "train.progress=lines"]
    result = run_radlab(*args[:-2], "--resume", *extra)
    assert result.returncode == 0, result.stderr
    epochs = [line for line in result.stderr.splitlines() if line.startswith("epoch ")]
    assert epochs[0].startswith(f"epoch {killed_at + 2}/{killed_at + 3}")  # resumed, not restarted
    assert load_checkpoint_file(stage / "checkpoints" / "last.safetensors")["epoch"] == killed_at + 2
    _every_file_parses(run)


def _first_checkpoint(run: Path) -> bool:
    return any(run.rglob("checkpoints/last.safetensors"))


SIGNALS = [(name, signal.SIGTERM) for name in TASKS] + [("toy", signal.SIGINT)]


@pytest.mark.parametrize(("name", "signum"), SIGNALS, ids=[f"{n}-{s.name}" for n, s in SIGNALS])
def test_a_signal_during_training_exits_128_plus_its_number_with_one_line(name, signum, tiny, tmp_path):
    """Finding 4: SIGTERM (pre-emption, `timeout`) exited 0 with no message, as if training had finished, and
    ICH skipped its later stages; SIGINT exited 1, the code of a data error."""
    run = tmp_path / "run"
    _, process = _long_training(name, tiny, run, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: _first_checkpoint(run) or process.poll() is not None)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 128 + signum, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"interrupted ({signum.name}) at epoch ") and "--resume" in last, stderr
    assert "Traceback" not in stderr and not (run / "embeddings").exists()  # ICH: no later stage ran
    _every_file_parses(run)


STALLED_PREDICT = """
import os, time
import radlab.core.infer as infer
import radlab.core.infer.streaming as streaming

original = streaming.iterate_batches

def stalled(*args, **kwargs):
    for number, batch in enumerate(original(*args, **kwargs)):
        if number == 1:  # the first batch is done: predict is under way
            open(os.environ["STALL_MARKER"], "w").close()
            time.sleep(600)
        yield batch

streaming.iterate_batches = infer.iterate_batches = stalled
from radlab.cli import main
main()
"""


@pytest.mark.parametrize("name", TASKS)
def test_kill_9_during_predict_leaves_no_partial_output_and_a_rerun_completes(name, tiny, tmp_path):
    data, run = tiny.data(name), tiny.run(name)
    script, marker, output = tmp_path / "stalled.py", tmp_path / "started", tmp_path / "out.csv"
    script.write_text(STALLED_PREDICT)
    args = [*demo(name).predict_args(data, run, output), "--model", str(run), "--workers", "0", "--batch-size", "1"]
    process = subprocess.Popen(
        [sys.executable, str(script), name, "predict", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "STALL_MARKER": str(marker)},
    )
    try:
        _wait_for(lambda: marker.exists() or process.poll() is not None, timeout=300)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, process.stderr.read()  # killed mid-run, not finished
    assert not output.exists()  # the output is written whole, at the end, or not at all
    rerun = predict(name, data, [run], output)
    assert rerun.returncode == 0, rerun.stderr
    assert len(demo(name).scores(output)) > 0


@pytest.mark.parametrize("name", TASKS)
def test_an_unreadable_input_is_named_and_strict_makes_it_an_error(name, tiny, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny.data(name), data, symlinks=True)
    broken = demo(name).inputs(data)[0]
    broken.write_bytes(b"\x00 not an image " * 8)
    run = tiny.run(name)

    lenient = predict(name, data, [run], tmp_path / "lenient.csv")
    assert lenient.returncode == 0, lenient.stderr
    assert broken.name in "\n".join(line for line in lenient.stderr.splitlines() if line.startswith("warning"))
    assert "Traceback" not in lenient.stderr

    strict = predict(name, data, [run], tmp_path / "strict.csv", "--strict")
    assert strict.returncode == 1 and broken.name in strict.stderr and "Traceback" not in strict.stderr
    assert strict.stderr.strip().startswith("error:") and not (tmp_path / "strict.csv").exists()


class _Marker:
    """Unpickling this creates a file: the proof that a pickle was executed."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("name", TASKS)
def test_a_malicious_pickle_as_weights_is_refused_and_never_executed(name, tiny, tmp_path):
    marker = tmp_path / "executed"
    weights = tmp_path / "weights.pth"
    weights.write_bytes(pickle.dumps({"conv.weight": _Marker(str(marker))}))
    result = run_radlab(
        name, "train", "--data-root", tiny.data(name), "--out", tmp_path / "run", "--config", "cpu-small",
        *tiny_sets(name, f"model.weights_file={weights}", "model.pretrained=true"),
    )  # fmt: skip
    assert result.returncode == 1 and "pickle" in result.stderr and "--trust-pickle" in result.stderr
    assert "Traceback" not in result.stderr and not marker.exists()


@pytest.mark.parametrize("name", TASKS)
def test_the_exported_engines_agree_with_torch(name, tiny, tmp_path):
    """`radlab export --int8` checks every engine on held-out data with the official metric; predict then runs
    the onnx engine as torch does, and refuses an engine that was never exported in one line."""
    data, run = tiny.data(name), tmp_path / "run"
    shutil.copytree(tiny.run(name), run)
    missing = predict(name, data, [run], tmp_path / "none.csv", "--engine", "onnx")
    assert missing.returncode == 1 and "radlab export" in missing.stderr and "Traceback" not in missing.stderr
    assert not (tmp_path / "none.csv").exists()
    exported = run_radlab("export", run, "--int8", "--calibration", "8")
    assert exported.returncode == 0, exported.stderr
    report = json.loads((run / "export.json").read_text())
    metric = get_task(name).export.get().metric
    from radlab.core.infer.nncf import nncf_installed
    from radlab.core.infer.openvino import openvino_installed

    openvino = ["openvino", "openvino-int8"] if openvino_installed() else []  # checked where it is installed
    nncf = ["openvino-nncf"] if nncf_installed() else []
    assert list(report["validation"]) == ["torch", "onnx", "int8", *openvino, *nncf]
    assert report["calibration_images"] == 8
    for fp32 in ("onnx", *openvino[:1]):
        check = report["validation"][fp32]
        assert check["max_abs_prob_diff"] < 1e-3
        assert check[f"{metric}_change"] is None or abs(check[f"{metric}_change"]) < 1e-6
    for int8 in ("int8", *openvino[1:], *nncf):
        assert report["validation"][int8]["max_abs_prob_diff"] < 0.5  # 8 calibration images: coarse, but close
    outputs = {}
    for engine in ("torch", "onnx", *openvino[:1]):
        result = predict(name, data, [run], tmp_path / f"{engine}.csv", "--engine", engine)
        assert result.returncode == 0, result.stderr
        outputs[engine] = np.asarray(demo(name).scores(tmp_path / f"{engine}.csv"), dtype=float)
    for engine in ("onnx", *openvino[:1]):
        assert outputs[engine].shape == outputs["torch"].shape
        assert np.abs(outputs[engine] - outputs["torch"]).max() < 1e-3

    # finding 6: retrained after the export, the old ONNX model was used silently
    for exported_from in [p.parent / "model.safetensors" for p in run.rglob("model.onnx")]:
        retrain_weights(exported_from, lambda t: t + 0.01)
    stale = run_radlab(
        name, "predict", *_predict_args_with_output(name, data, run, tmp_path / "s.csv"), "--engine", "onnx"
    )
    assert stale.returncode == 1 and "run `radlab export` again" in stale.stderr and not (tmp_path / "s.csv").exists()


@pytest.mark.parametrize("name", TASKS)
def test_a_folds_ensemble_predicts_as_its_folds_together(name, tiny, tmp_path):
    """`--model ENSEMBLE` is `--model fold0 --model fold1`; for the tasks that average probabilities (all but
    the detector, which merges its folds per anchor), also the mean of each fold's own prediction."""
    data, out = tiny.data(name), tiny.folds(name)
    manifest = json.loads((out / "ensemble.json").read_text())
    assert (manifest["task"], manifest["members"]) == (name, ["fold0", "fold1"])
    objective = get_task(name).objective
    assert all((objective.key or objective.metric) in scores for scores in manifest["held_out"])
    _predicts_as_its_members(name, data, out, [out / "fold0", out / "fold1"], tmp_path)


def _predicts_as_its_members(name: str, data: Path, out: Path, members: list[Path], tmp_path: Path) -> None:
    """`--model OUT` is `--model member...`; for the tasks that average probabilities (all but the detector,
    which merges per anchor), also the mean of each member's own prediction."""
    scores = {}
    for label, runs in (("ensemble", [out]), ("all", members)):
        result = predict(name, data, runs, tmp_path / f"{label}.csv")
        assert result.returncode == 0, result.stderr
        scores[label] = np.asarray(demo(name).scores(tmp_path / f"{label}.csv"), dtype=float)
    np.testing.assert_allclose(scores["ensemble"], scores["all"], atol=1e-6)
    if name == "pneumonia":
        return
    alone = []
    for k, member in enumerate(members):
        assert predict(name, data, [member], tmp_path / f"m{k}.csv").returncode == 0
        alone.append(np.asarray(demo(name).scores(tmp_path / f"m{k}.csv"), dtype=float))
    np.testing.assert_allclose(scores["ensemble"], np.mean(alone, axis=0), atol=2e-5)


def _scored_beside_its_members(name: str, manifest: dict) -> None:
    """The ensemble's held-out score and each member's, measured the same way, are in the manifest."""
    metric = get_task(name).export.get().metric
    assert set(manifest["ensemble"]) == {metric} and manifest["ensemble"][metric] is not None
    assert [set(m) for m in manifest["members_measured"]] == [{metric}] * len(manifest["members"])
    objective = get_task(name).objective
    assert all((objective.key or objective.metric) in scores for scores in manifest["held_out"])


@pytest.mark.parametrize("name", TASKS)
def test_a_run_that_keeps_its_best_epochs_predicts_as_their_mean(name, tiny, tmp_path):
    """`train.snapshots: 2` of 3 epochs: RUN/kept/ holds the two best on the recipe's monitor (the third
    removed), RUN/ensemble.json names them best first, and predict averages them."""
    from radlab.core.engine.callbacks import read_history
    from radlab.core.errors import RadlabConfigError

    try:
        get_task(name).load_config("cpu-small", ["train.snapshots=2"])
    except RadlabConfigError as refused:
        assert "train.snapshots" in str(refused)
        pytest.skip(f"{name} keeps no epochs: {refused}")
    data = tiny.data(name)
    out = tiny.ensemble(name, "train.max_epochs=3", "train.early_stopping_patience=null", "train.snapshots=2")
    manifest = json.loads((out / "ensemble.json").read_text())
    assert manifest["type"] == "epochs" and len(manifest["members"]) == 2
    assert sorted(p.name for p in (out / "kept").iterdir()) == sorted(m.split("/")[1] for m in manifest["members"])
    monitor = manifest["selected_on"]["score"]
    history = next(h for h in out.rglob("history.csv") if "kept" not in h.parts and monitor in read_history(h)[0])
    values = {int(r["epoch"]): float(r[monitor]) for r in read_history(history)}
    lower = manifest["selected_on"]["better"] == "lower"
    best = sorted(values, key=lambda e: (values[e] if lower else -values[e], e))[:2]
    assert [int(m.removeprefix("kept/epoch")) for m in manifest["members"]] == best
    _scored_beside_its_members(name, manifest)
    from radlab.core.report import report_run

    page = report_run(out, tmp_path / "report.html").read_text()
    assert "Ensemble</h2>" in page and all(member in page for member in manifest["members"])
    refused = run_radlab("export", str(out))
    assert refused.returncode == 1 and "is an ensemble; export each of its members" in refused.stderr
    _predicts_as_its_members(name, data, out, [out / m for m in manifest["members"]], tmp_path)


@pytest.mark.parametrize("name", [name for name in TASKS if name in ("mrnet", "toy")])
def test_an_ensemble_of_seeds_keeps_its_best_members_and_predicts_as_their_mean(name, tiny, tmp_path):
    """`train.members: 3, keep_members: 2`: three seeds trained, the two best on the objective's held-out
    score named in ensemble.json (every candidate's score beside), predicted as their mean."""
    # Trained for MRNet (its only ensemble) and the toy task: the driver is the same for every task (and MURA's
    # paper preset, which uses it, has its selection tested in tests/core/engine/test_ensemble.py).
    data = tiny.data(name)
    out = tiny.ensemble(name, "train.members=3", "train.keep_members=2")
    manifest = json.loads((out / "ensemble.json").read_text())
    objective = get_task(name).objective
    key = objective.key or objective.metric
    candidates = manifest["candidates"]
    assert list(candidates) == ["member0", "member1", "member2"]
    ranked = sorted(
        candidates, key=lambda m: -candidates[m][key] if objective.direction == "maximize" else candidates[m][key]
    )
    assert manifest["type"] == "members" and manifest["members"] == sorted(ranked[:2])
    seeds = [get_task(name).run_config(out / m).train.seed for m in candidates]
    assert seeds == [seeds[0], seeds[0] + 1, seeds[0] + 2]
    _scored_beside_its_members(name, manifest)
    _predicts_as_its_members(name, data, out, [out / m for m in manifest["members"]], tmp_path)


@pytest.mark.parametrize("name", TASKS)
def test_bench_infer_prints_the_spec_keys_and_both_sides_agree(name, tiny):
    from radlab.core.infer.openvino import openvino_installed

    sizes = [item for item in TINY[name].train if item.startswith(("data.image_size", "model.backbone"))]
    engines = ["torch", "onnx", *(["openvino"] if openvino_installed() else [])]
    result = run_cli(
        "bench", "infer", "--task", name, "--json", "--images", "2", "--repeats", "1", "--config", "cpu-small",
        *(arg for item in sizes for arg in ("--set", item)), *(a for e in engines for a in ("--engine", e)),
        "--workers", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= SPEC_KEYS and report["task"] == name and list(report["engines"]) == engines
    for engine in report["engines"].values():
        assert engine["max_abs_prob_diff"] < 1e-3 and engine["label_agreement"] == 1.0 and engine["speedup"] > 0
        assert 0.0 <= engine["outside_network_fraction"] <= 1.0  # decoding, batching, writing: not the network
    assert report["roofline"]["matmul_peak_gflops"] > 0


@pytest.mark.parametrize("name", TASKS)
def test_bench_train_measures_fp32_against_bf16_through_the_tasks_own_training(name):
    sizes = [item for item in TINY[name].train if item.startswith(("data.image_size", "model.backbone"))]
    result = run_cli(
        "bench", "train", "--task", name, "--json", "--steps", "1", "--warmup", "1", "--config", "cpu-small",
        *(arg for item in sizes for arg in ("--set", item)), "--workers", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= SPEC_KEYS and report["task"] == name and list(report["variants"]) == ["fp32", "bf16"]
    for variant in report["variants"].values():
        assert variant["timed_steps"] == 1 and variant["items"] >= 1 and variant["items_per_s"] > 0
        assert 0.0 <= variant["data_wait_fraction"] < 1.0 and np.isfinite(variant["first_step_loss"])
    assert report["speedup"] > 0 and report["epoch_items"] > 0 and report["loader_workers"] == 0


@pytest.mark.parametrize("name", TASKS)
def test_the_report_renders_into_one_self_contained_file_even_with_damaged_metrics(name, tiny, tmp_path):
    """Finding 23: a corrupt metrics.json made `radlab report` raise a JSONDecodeError traceback; now it warns
    and leaves the scores out."""
    run = tmp_path / "run"
    shutil.copytree(tiny.run(name), run)
    (run / "metrics.json").write_text('{"epoch": 2, "auc')
    result = run_radlab("report", run, "--out", tmp_path / "out" / "r.html")
    assert result.returncode == 0, result.stderr
    assert "metrics.json: not valid JSON" in result.stderr and "Traceback" not in result.stderr
    page = (tmp_path / "out" / "r.html").read_text()
    assert page.count("data:image/png;base64,") >= 1 and "http://" not in page and "https://" not in page
    assert "<h2 id=" in page and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["r.html"]


def _original_size(path: Path) -> tuple[int, int]:
    """(height, width) of an input as `radlab inspect` reads it."""
    result = run_radlab("inspect", path)
    entry = json.loads(result.stdout)
    if entry["kind"] == "volume":
        return tuple(entry["shape"][-2:])
    return tuple((entry.get("display_shape") or entry["shape"])[:2])


@pytest.mark.parametrize("name", TASKS)
def test_explain_pictures_have_the_inputs_size(name, tiny, tmp_path):
    from PIL import Image

    source = demo(name).explain_input(tiny.data(name))
    result = run_radlab("explain", name, source, "--model", tiny.run(name), "--out", tmp_path / "x")
    assert result.returncode == 0, result.stderr
    index = json.loads((tmp_path / "x" / "explanations.json").read_text())
    assert index
    height, width = _original_size(source)
    for entry in index:
        with Image.open(tmp_path / "x" / entry["file"]) as picture:
            assert picture.size == (width, height), entry


def _predict_args_with_output(name: str, data: Path, run: Path, output: Path) -> list[str]:
    return [*demo(name).predict_args(data, run, output), "--model", str(run), "--workers", "0"]


@pytest.mark.parametrize("name", TASKS)
def test_an_output_that_would_destroy_an_input_or_the_model_is_refused_before_any_work(name, tiny, tmp_path):
    """Finding 2: an OUTPUT equal to the input CSV, or to the run's weights or config.yaml, replaced it (exit 0)."""
    data, run = tmp_path / "data", tmp_path / "run"
    shutil.copytree(tiny.data(name), data, symlinks=True)
    shutil.copytree(tiny.run(name), run)
    given = Path(demo(name).predict_args(data, run, tmp_path / "x.csv")[0])
    victims = [given if given.is_file() else demo(name).inputs(data)[0], run / "config.yaml"]
    victims += sorted(p for p in run.rglob("*.safetensors") if p.parent.name != "checkpoints")[:1]
    for victim in victims:
        before = victim.read_bytes()
        result = run_radlab(name, "predict", *_predict_args_with_output(name, data, run, victim))
        assert result.returncode == 2, (victim, result.stderr)
        assert "elsewhere" in result.stderr and victim.read_bytes() == before


@pytest.mark.parametrize("name", TASKS)
def test_when_no_input_at_all_can_be_read_predict_exits_1_and_writes_nothing(name, tiny, tmp_path):
    """Finding 20: every input unreadable (a forgotten --data-root) gave a complete-looking file and exit 0."""
    data = tmp_path / "data"
    shutil.copytree(tiny.data(name), data, symlinks=True)
    for path in demo(name).inputs(data):
        path.write_bytes(b"\x00 not an image " * 8)
    output = tmp_path / "out.csv"
    result = run_radlab(name, "predict", *_predict_args_with_output(name, data, tiny.run(name), output))
    assert result.returncode == 1 and "could be read; nothing written" in result.stderr
    assert not output.exists() and "Traceback" not in result.stderr


@pytest.mark.parametrize("name", TASKS)
def test_weights_of_the_wrong_shape_are_one_line(name, tiny, tmp_path):
    """Finding 10: a tensor whose shape differs from the model's gave a RuntimeError traceback."""
    import torch

    run = tmp_path / "run"
    shutil.copytree(tiny.run(name), run)
    every = [p for p in run.rglob("*.safetensors") if p.parent.name != "checkpoints"]
    for weights in every:  # whichever of them predict loads first
        retrain_weights(weights, lambda t: torch.zeros((t.shape[0] + 1, *t.shape[1:]), dtype=t.dtype))
    result = run_radlab(name, "predict", *_predict_args_with_output(name, tiny.data(name), run, tmp_path / "o.csv"))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert any(f"{w}: weights do not fit" in result.stderr for w in every) and "shape" in result.stderr


def _weights_of(run: Path) -> dict[str, str]:
    """{relative path: sha256} of every weights file of a run (its safetensors outside checkpoints/)."""
    from radlab.core.provenance.manifest import sha256_file

    every = [p for p in run.rglob("*.safetensors") if "checkpoints" not in p.relative_to(run).parts]
    return {p.relative_to(run).as_posix(): sha256_file(p) for p in every}


@pytest.mark.parametrize("name", TASKS)
def test_a_run_records_its_environment_and_predict_refuses_weights_changed_since(name, tiny, tmp_path):
    """Issue 18, provenance: RUN/environment.json names the code, the machine, the seeds, the data (counts and
    the label files' sha256) and the sha256 of every weights file of the run; predict refuses weights changed
    since (one line naming the file, exit 1), or with --allow-changed-weights warns and predicts."""
    import torch

    from radlab.core.provenance.manifest import sha256_file

    data, run = tiny.data(name), tmp_path / "run"
    shutil.copytree(tiny.run(name), run)
    record = json.loads((run / "environment.json").read_text())
    assert record["status"] == "finished" and record["weights"] == _weights_of(run) and record["weights"]
    assert record["seeds"]["train.seed"] == get_task(name).run_config(run).train.seed
    assert record["torch"]["version"] == torch.__version__ and record["radlab"]["version"]
    manifest = record["data"]
    assert manifest["total_files"] == sum(manifest["files"].values()) > len(manifest["label_files"]) > 0
    root = Path(manifest["root"])
    assert all(sha256_file(root / rel) == entry["sha256"] for rel, entry in manifest["label_files"].items())

    kept = (run / "environment.json").read_text()
    for weights in record["weights"]:  # whichever of them predict loads first
        retrain_weights(run / weights, lambda t: t + 0.01)
    (run / "environment.json").write_text(kept)  # changed behind the record's back
    refused = run_radlab(name, "predict", *_predict_args_with_output(name, data, run, tmp_path / "o.csv"))
    assert refused.returncode == 1 and refused.stderr.startswith("error: "), refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "changed since training" in refused.stderr
    assert any(f"{run / w}: changed since training" in refused.stderr for w in record["weights"])
    assert not (tmp_path / "o.csv").exists()
    allowed = run_radlab(
        name, "predict", *_predict_args_with_output(name, data, run, tmp_path / "o.csv"), "--allow-changed-weights"
    )
    assert allowed.returncode == 0 and "used anyway (--allow-changed-weights)" in allowed.stderr, allowed.stderr
    assert (tmp_path / "o.csv").is_file()


@pytest.mark.parametrize("name", [name for name in TASKS if len(get_task(name).stages) > 1])
def test_a_later_stage_trained_again_records_the_weights_it_leaves(name, tiny, tmp_path):
    """`--stage LAST` rewrites that stage's weights: the record lists the new checksums (the earlier training
    kept under "earlier"), so predict still accepts the run."""
    from radlab.core.engine.driver import train

    data, run = tiny.data(name), tmp_path / "run"
    shutil.copytree(tiny.run(name), run)
    before = json.loads((run / "environment.json").read_text())
    train(get_task(name), data, run, None, list(TINY[name].train), stage=get_task(name).stages[-1])
    after = json.loads((run / "environment.json").read_text())
    assert after["weights"] == _weights_of(run) and after["weights"] != before["weights"]
    assert [e["started"] for e in after["earlier"]] == [before["started"]]
    result = run_radlab(name, "predict", *_predict_args_with_output(name, data, run, tmp_path / "o.csv"))
    assert result.returncode == 0, result.stderr


def _predict_into(name: str, data: Path, run: Path, folder: Path, *extra: str) -> Path:
    """predict into `folder` (OUTPUT and any file it writes beside it, such as MURA's --probs)."""
    folder.mkdir()
    result = predict(name, data, [run], folder / demo(name).output_name, *extra)
    assert result.returncode == 0, result.stderr
    return folder


@pytest.mark.parametrize("name", TASKS)
def test_sharded_predictions_merge_into_the_unsharded_output_byte_for_byte(name, tiny, tmp_path):
    """`predict --shard I/3` for I = 0, 1, 2, then `merge INPUT OUTPUT SHARD...`: every file predict writes
    (MURA's --probs too) equals the unsharded one, byte for byte; a shard file in the wrong place is one line
    naming it. One item per pass (`--batch-size 1`): a network's output for an item must not depend on the
    other items of its batch, which a batched convolution does not promise to the last bit (with one compute
    thread, ICH's sixth printed digit moved once in a thousand values between batch sizes)."""
    data, run = tiny.data(name), tiny.run(name)
    whole = _predict_into(name, data, run, tmp_path / "whole", "--batch-size", "1")
    shards = [
        _predict_into(name, data, run, tmp_path / f"shard{i}", "--shard", f"{i}/3", "--batch-size", "1")
        for i in range(3)
    ]
    source = demo(name).predict_args(data, run, whole / demo(name).output_name)[0]
    for written in sorted(whole.iterdir()):
        merged = tmp_path / f"merged-{written.name}"
        result = run_radlab(name, "merge", source, merged, *(folder / written.name for folder in shards))
        assert result.returncode == 0, result.stderr
        assert merged.read_bytes() == written.read_bytes()
    output = demo(name).output_name
    lines = [len((folder / output).read_text().splitlines()) for folder in shards]
    full = max(range(3), key=lambda i: lines[i])  # the fullest shard, given in place of the next one
    files = [shards[full if i == (full + 1) % 3 else i] / output for i in range(3)]
    if lines[full] == lines[(full + 1) % 3] and name == "mrnet":
        pytest.skip("MRNet's rows name no exam: two shards of equal length cannot be told apart")
    wrong = run_radlab(name, "merge", source, tmp_path / "wrong.csv", *files)
    assert wrong.returncode == 1 and str(files[(full + 1) % 3]) in wrong.stderr, wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1 and not (tmp_path / "wrong.csv").exists()
    empty = _predict_into(name, data, run, tmp_path / "empty", "--shard", "999/1000") / output  # no unit here
    assert empty.read_text() in ("", (whole / output).read_text().splitlines(keepends=True)[0])  # header at most
    refused = run_radlab(
        name, "predict", *_predict_args_with_output(name, data, run, tmp_path / "x.csv"), "--shard", "3/3"
    )
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
