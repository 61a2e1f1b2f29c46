"""`radlab compare` (issue 18, item 6): two toy runs that differ in one `--set`."""

from radlab.core.summary.compare import differing_config, metrics_side_by_side
from radlab.core.summary.facts import read_facts
from tests.conftest import run_radlab, tiny_sets


def _second_run(tiny, tmp_path):
    run = tmp_path / "seed1"
    result = run_radlab(
        "toy", "train", "--data-root", tiny.data("toy"), "--out", run, "--config", "cpu-small",
        *tiny_sets("toy", "train.seed=1"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return run


def test_the_config_keys_that_differ_and_the_metrics_side_by_side(tiny, tmp_path, one_thread):
    first, second = tiny.run("toy"), _second_run(tiny, tmp_path)
    runs = [read_facts(first), read_facts(second)]
    assert differing_config(runs) == [["train.seed", "0", "1"]]
    rows = metrics_side_by_side(runs)
    assert [row[0] for row in rows] == ["epoch", "auroc"]
    assert rows[1][1:] == [f"{run.metrics['auroc']:.4g}" for run in runs]
    html = tmp_path / "compare.html"
    result = run_radlab("compare", first, second, "--html", html)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["config", "key", str(first), str(second)] and lines[1].split() == [
        "train.seed",
        "0",
        "1",
    ]
    assert lines[3].split()[0] == "metric" and [line.split()[0] for line in lines[4:]] == ["epoch", "auroc"]
    page = html.read_text()
    assert page.count("<img") == 2 and "Config keys that differ" in page and "train.seed" in page


def test_one_run_is_a_usage_error(tiny):
    result = run_radlab("compare", tiny.run("toy"))
    assert result.returncode == 2 and "at least two runs" in result.stderr
