import json
import shutil

import numpy as np
import pytest
from PIL import Image

from radlab.tasks.mura.evaluate import evaluate_files
from radlab.tasks.mura.predict import predict_csv
from tests.conftest import csv_rows, run_cli


def _rows(path):
    return [tuple(row) for row in csv_rows(path)]


@pytest.fixture()
def valid_copy(tiny_mura, tmp_path):
    """A writable copy of the tiny valid split; returns (root, image paths in CSV order)."""
    root = tmp_path / "data"
    shutil.copytree(tiny_mura / "MURA-v1.1" / "valid", root / "MURA-v1.1" / "valid")
    shutil.copy(tiny_mura / "MURA-v1.1" / "valid_image_paths.csv", root / "MURA-v1.1")
    shutil.copy(tiny_mura / "MURA-v1.1" / "valid_labeled_studies.csv", root / "MURA-v1.1")
    paths = [row[0] for row in csv_rows(root / "MURA-v1.1" / "valid_image_paths.csv")]
    return root, paths


def _studies(paths):
    return list(dict.fromkeys(p.rsplit("/", 1)[0] + "/" for p in paths))


def _multi_image_studies(paths):
    counts = {}
    for p in paths:
        counts.setdefault(p.rsplit("/", 1)[0] + "/", []).append(p)
    return [images for images in counts.values() if len(images) >= 2]


def test_one_row_per_study_in_first_seen_order_even_when_interleaved(tiny_run, valid_copy, tmp_path):
    root, paths = valid_copy
    shuffled = list(np.random.default_rng(0).permutation(paths))
    (tmp_path / "in.csv").write_text("\n".join(shuffled) + "\n")
    summary = predict_csv(tmp_path / "in.csv", tmp_path / "out.csv", tiny_run, root)
    rows = _rows(tmp_path / "out.csv")
    assert [study for study, _ in rows] == _studies(shuffled)
    assert {label for _, label in rows} <= {"0", "1"}
    assert summary.studies == len(rows) and summary.unreadable_images == 0


def test_predictions_reproduce_the_validation_kappa_of_the_kept_epoch(tiny_run, tiny_mura, tmp_path):
    base = tiny_mura / "MURA-v1.1"
    predict_csv(base / "valid_image_paths.csv", tmp_path / "out.csv", tiny_run, tiny_mura)
    official, _ = evaluate_files(base / "valid_labeled_studies.csv", tmp_path / "out.csv")
    kept = json.loads((tiny_run / "metrics.json").read_text())["study_level"]["Overall"]["kappa"]
    assert official["Overall_Mean"] == pytest.approx(kept, abs=1e-9)


def test_batching_across_studies_and_tta_do_not_lose_or_mix_studies(tiny_run, valid_copy, tmp_path):
    root, _ = valid_copy
    csv_path = root / "MURA-v1.1" / "valid_image_paths.csv"
    probs = {}
    for batch_size in (1, 5, 64):
        predict_csv(
            csv_path,
            tmp_path / "o.csv",
            tiny_run,
            root,
            batch_size=batch_size,
            num_workers=0,
            probabilities_csv=tmp_path / f"p{batch_size}.csv",
        )
        probs[batch_size] = np.array([float(p) for _, p in _rows(tmp_path / f"p{batch_size}.csv")])
    np.testing.assert_allclose(probs[1], probs[5], atol=1e-5)
    np.testing.assert_allclose(probs[1], probs[64], atol=1e-5)
    predict_csv(csv_path, tmp_path / "t.csv", tiny_run, root, tta_hflip=True, probabilities_csv=tmp_path / "pt.csv")
    assert len(_rows(tmp_path / "pt.csv")) == len(probs[1])


def test_labels_are_never_taken_from_folder_names(tiny_run, valid_copy, tmp_path):
    root, paths = valid_copy
    predict_csv(
        root / "MURA-v1.1" / "valid_image_paths.csv",
        tmp_path / "a.csv",
        tiny_run,
        root,
        probabilities_csv=tmp_path / "pa.csv",
    )
    renamed = []
    for path in paths:
        hidden = path.replace("_positive/", "/").replace("_negative/", "/")
        (root / hidden).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / path, root / hidden)
        renamed.append(hidden)
    (tmp_path / "hidden.csv").write_text("\n".join(renamed) + "\n")
    predict_csv(tmp_path / "hidden.csv", tmp_path / "b.csv", tiny_run, root, probabilities_csv=tmp_path / "pb.csv")
    assert [p for _, p in _rows(tmp_path / "pa.csv")] == [p for _, p in _rows(tmp_path / "pb.csv")]
    assert all("_positive" not in s and "_negative" not in s for s, _ in _rows(tmp_path / "b.csv"))


def test_16bit_and_rgba_pngs_are_read_without_complaint(tiny_run, valid_copy, tmp_path):
    root, paths = valid_copy
    gray = np.asarray(Image.open(root / paths[0]).convert("L"), dtype=np.uint16)
    Image.fromarray(gray * 200 + 1000).save(root / paths[0])
    rgb = np.asarray(Image.open(root / paths[1]).convert("RGB"))
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]), "RGBA").save(root / paths[1])
    assert Image.open(root / paths[0]).mode == "I;16" and Image.open(root / paths[1]).mode == "RGBA"
    result = run_cli(
        "mura",
        "predict",
        root / "MURA-v1.1/valid_image_paths.csv",
        tmp_path / "o.csv",
        "--model",
        tiny_run,
        "--data-root",
        root,
    )
    assert result.returncode == 0 and "warning" not in result.stderr


def _break(root, paths):
    """A missing image and a truncated PNG in two multi-image studies, and one study with no readable image."""
    first, second = _multi_image_studies(paths)[:2]
    (root / first[0]).unlink()
    data = (root / second[0]).read_bytes()
    (root / second[0]).write_bytes(data[: len(data) // 3])
    lost = next(
        s for s in _studies(paths) if s not in (first[0].rsplit("/", 1)[0] + "/", second[0].rsplit("/", 1)[0] + "/")
    )
    for p in paths:
        if p.startswith(lost):
            (root / p).write_text("not a png")
    return first[0], second[0], lost


def test_bad_images_warn_and_the_study_is_predicted_from_its_other_images(tiny_run, valid_copy, tmp_path):
    root, paths = valid_copy
    missing, truncated, lost = _break(root, paths)
    result = run_cli(
        "mura",
        "predict",
        root / "MURA-v1.1/valid_image_paths.csv",
        tmp_path / "o.csv",
        "--model",
        tiny_run,
        "--data-root",
        root,
    )
    assert result.returncode == 0, result.stderr
    line_of = {p: i + 1 for i, p in enumerate(paths)}
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning")]
    for bad, reason in ((missing, "file not found"), (truncated, "cannot decode image")):
        (warning,) = [w for w in warnings if bad in w]
        assert f"valid_image_paths.csv:{line_of[bad]}: " in warning and f"{bad}: {reason}" in warning
    assert f"no readable image in {lost}" in warnings[-1]  # listed at the end
    rows = _rows(tmp_path / "o.csv")
    assert [s for s, _ in rows] == _studies(paths)
    assert "Traceback" not in result.stderr


def test_strict_turns_a_bad_image_into_an_error_and_writes_nothing(tiny_run, valid_copy, tmp_path):
    root, paths = valid_copy
    missing, _, _ = _break(root, paths)
    result = run_cli(
        "mura",
        "predict",
        root / "MURA-v1.1/valid_image_paths.csv",
        tmp_path / "o.csv",
        "--model",
        tiny_run,
        "--data-root",
        root,
        "--strict",
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error:") and missing in result.stderr
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["missing.csv", "o.csv"], 1, "missing.csv: file not found"),
        (["in.csv", "o.csv", "--model", "not-a-run"], 1, "config.yaml: missing"),
    ],
)
def test_bad_inputs_exit_1_with_one_line(tiny_run, tmp_path, args, code, message):
    (tmp_path / "in.csv").write_text("MURA-v1.1/valid/XR_HAND/p1/study1/image1.png\n")
    if "--model" not in args:
        args = [*args, "--model", str(tiny_run)]
    result = run_cli("mura", "predict", *args, cwd=tmp_path)
    assert result.returncode == code and message in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_path_outside_the_data_root_is_refused_unless_allowed(tiny_mura, tiny_run, tmp_path):
    from radlab.tasks.mura.formats import split_csvs

    rows = split_csvs(tiny_mura, "valid")[0].read_text().splitlines()
    escaping = tmp_path / "in.csv"
    escaping.write_text(f"{rows[0]}\n{tiny_mura / rows[1]}\n")  # line 2 is absolute
    refused = run_cli("mura", "predict", escaping, tmp_path / "out.csv", "--model", tiny_run, "--data-root", tiny_mura)
    assert refused.returncode == 1 and "in.csv:2" in refused.stderr and "--allow-outside-root" in refused.stderr
    assert not (tmp_path / "out.csv").exists()
    allowed = run_cli(
        "mura", "predict", escaping, tmp_path / "out.csv", "--model", tiny_run, "--data-root", tiny_mura,
        "--allow-outside-root", "--workers", "0",
    )  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr


def test_two_predicts_sharing_one_cache_both_succeed(tiny_run, tiny_mura, tmp_path):
    """Finding 3: a predict that extended a shared cache deleted the store another predict was reading
    (FileNotFoundError). Two at once, on overlapping inputs, give what an uncached predict gives."""
    import subprocess
    import sys

    from radlab.tasks.mura.formats import split_csvs

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("cache_dir: null", f"cache_dir: {tmp_path / 'cache'}"))
    inputs = [split_csvs(tiny_mura, "train")[0], split_csvs(tiny_mura, "valid")[0]]
    outputs = [tmp_path / "a.csv", tmp_path / "b.csv"]
    predicts = [
        subprocess.Popen(
            [sys.executable, "-m", "radlab", "mura", "predict", str(given), str(out), "--model", str(run),
             "--data-root", str(tiny_mura), "--workers", "0"],
            stderr=subprocess.PIPE, text=True,
        )
        for given, out in zip(inputs, outputs, strict=True)
    ]  # fmt: skip
    errors = [p.stderr.read() for p in predicts]
    assert [p.wait() for p in predicts] == [0, 0], errors
    for given, out in zip(inputs, outputs, strict=True):
        predict_csv(given, tmp_path / "plain.csv", tiny_run, tiny_mura, num_workers=0)
        assert out.read_text() == (tmp_path / "plain.csv").read_text()
