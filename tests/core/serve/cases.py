"""Each task's serve cases from its tiny data set, and what `radlab TASK predict` answered for them, in the
contract's `prediction` shape: the service must give the same numbers (shared/spec/serve.md)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from radlab.core.task import get_task
from tests.conftest import run_radlab

Upload = tuple[str, Path]  # the name the client gives, the file it sends
Case = list[Upload]


def _demo(name: str) -> Any:
    return get_task(name).demo.get()


def _mura(data: Path) -> list[Case]:
    studies: dict[Path, Case] = {}
    for path in _demo("mura").inputs(data):
        studies.setdefault(path.parent, []).append((path.name, path))
    return list(studies.values())


def _mrnet(data: Path) -> list[Case]:
    from radlab.tasks.mrnet.formats import read_exam_paths
    from radlab.tasks.mrnet.synth import DEMO_PATHS

    return [
        [(f"exam_{plane}.npy", data / path) for plane, (_, path) in sorted(exam.planes.items())]
        for exam in read_exam_paths(data / DEMO_PATHS)
    ]


def _pneumonia(data: Path) -> list[Case]:
    return [[(path.name, path)] for path in _demo("pneumonia").inputs(data)]


def _ich(data: Path) -> list[Case]:
    from radlab.core.io.dicom import read_header

    series: dict[str, Case] = {}
    for path in _demo("ich").inputs(data):
        series.setdefault(str(read_header(path).SeriesInstanceUID), []).append((path.name, path))
    return list(series.values())


CASES: dict[str, Callable[[Path], list[Case]]] = {"mura": _mura, "mrnet": _mrnet, "pneumonia": _pneumonia, "ich": _ich}


def predicted(name: str, data: Path, run: Path, cases: list[Case], tmp: Path) -> list[dict[str, Any]]:
    """`radlab NAME predict` on exactly `cases`, read back as one contract `prediction` per case."""
    out = tmp / "cli"
    out.mkdir()
    if name == "mura":
        paths = out / "paths.csv"
        paths.write_text("".join(f"{p.relative_to(data).as_posix()}\n" for case in cases for _, p in case))
        result = run_radlab(
            "mura",
            "predict",
            paths,
            out / "labels.csv",
            "--data-root",
            data,
            "--probs",
            out / "probs.csv",
            "--model",
            run,
            "--workers",
            "0",
        )
        assert result.returncode == 0, result.stderr
        from radlab.tasks.mura.formats import read_predictions, read_probabilities

        labels = [row.label for row in read_predictions(out / "labels.csv")]
        probs = [row.probability for row in read_probabilities(out / "probs.csv")]
        return [{"probability": p, "label": k} for p, k in zip(probs, labels, strict=True)]
    if name == "mrnet":
        paths = out / "paths.csv"
        paths.write_text("".join(f"{p.relative_to(data).as_posix()}\n" for case in cases for _, p in case))
        result = run_radlab(
            "mrnet", "predict", paths, out / "p.csv", "--data-root", data, "--model", run, "--workers", "0"
        )
        assert result.returncode == 0, result.stderr
        from radlab.tasks.mrnet import TASKS
        from radlab.tasks.mrnet.formats import read_predictions

        return [dict(zip(TASKS, row.tolist(), strict=True)) for row in read_predictions(out / "p.csv")]
    folder = out / "input"
    folder.mkdir()
    for case in cases:
        for _, path in case:
            shutil.copy(path, folder / path.name)
    result = run_radlab(name, "predict", folder, out / "s.csv", "--model", run, "--workers", "0")
    assert result.returncode == 0, result.stderr
    if name == "pneumonia":
        from radlab.tasks.pneumonia.formats import format_prediction_string, read_submission

        rows = read_submission(out / "s.csv")
        answers = []
        for case in cases:
            found = rows[case[0][1].stem]
            answers.append({"prediction_string": format_prediction_string(found.boxes, found.scores)})
        return answers
    from radlab.tasks.ich.formats import SUBTYPES, read_submission

    ids, probs = read_submission(out / "s.csv")
    by_id = dict(zip(ids, probs.tolist(), strict=True))
    return [
        {"images": [{"name": upload, **dict(zip(SUBTYPES, by_id[p.stem], strict=True))} for upload, p in case]}
        for case in cases
    ]


def assert_same(name: str, served: dict[str, Any], expected: dict[str, Any], tolerance: float = 1e-6) -> None:
    """The service's prediction holds the command's numbers (to `tolerance`)."""
    if name == "pneumonia":
        assert served["prediction_string"] == expected["prediction_string"]
        return
    if name == "ich":
        got = {image["name"]: image for image in served["images"]}
        assert set(got) == {image["name"] for image in expected["images"]}
        for image in expected["images"]:
            for key, value in image.items():
                if key != "name":
                    assert abs(got[image["name"]][key] - value) <= tolerance, (image["name"], key)
        return
    for key, value in expected.items():
        assert abs(served[key] - value) <= tolerance, key
