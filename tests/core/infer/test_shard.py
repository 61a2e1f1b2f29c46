"""`--shard I/N` parsing, the hash assignment and merge's checks, on plain text files."""

from __future__ import annotations

from pathlib import Path

import pytest

from radlab.core.errors import RadlabConfigError, RadlabDataError, RadlabError
from radlab.core.infer.shard import (
    Shard,
    keyed_lines,
    merge_shards,
    of_shard,
    ordered_shards,
    parse_shard,
    shard_of,
    shard_path,
)


def test_parse_shard_counts_from_0_and_refuses_anything_else():
    assert parse_shard("0/3") == Shard(0, 3) and parse_shard("2/3") == Shard(2, 3)
    for bad in ("3/3", "1/0", "-1/3", "a/3", "1", "1/3/4", ""):
        with pytest.raises(RadlabConfigError):
            parse_shard(bad)


def test_auto_takes_torchruns_rank_and_world_size():
    assert parse_shard("auto", {"RANK": "1", "WORLD_SIZE": "2"}) == Shard(1, 2)
    with pytest.raises(RadlabConfigError, match="torchrun"):
        parse_shard("auto", {})
    assert shard_path(Path("out/preds.csv"), Shard(1, 2)) == Path("out/preds.shard-1-of-2.csv")


def test_the_assignment_is_sha256_of_the_key_and_partitions_the_units():
    keys = [f"study{k}/" for k in range(200)]
    assert shard_of("study0/", 100) == shard_of("study0/", 100) == 22  # a fixed value: no hash seed, no machine
    parts = [of_shard(keys, Shard(i, 3), str) for i in range(3)]
    assert sorted(k for part in parts for k in part) == sorted(keys) and all(parts)
    assert of_shard(keys, None, str) == keys


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_merge_writes_the_input_order_and_names_a_wrong_or_missing_shard(tmp_path):
    keys = [f"k{n}" for n in range(12)]
    shards = [
        _write(tmp_path / f"p.shard-{i}-of-3.csv", "h\n" + "".join(f"{k},{k}!\n" for k in keys if shard_of(k, 3) == i))
        for i in range(3)
    ]

    def read(path, _):
        return keyed_lines(path, header_lines=1)

    rows = [(k, k) for k in keys]
    assert merge_shards(rows, list(reversed(shards)), tmp_path / "all.csv", read) == 12  # ordered by the names
    assert (tmp_path / "all.csv").read_text() == "h\n" + "".join(f"{k},{k}!\n" for k in keys)

    other = (shard_of(keys[0], 3) + 1) % 3  # k0 also in a shard it does not belong to
    doubled = _write(tmp_path / "d.csv", shards[other].read_text() + f"{keys[0]},x\n")
    with pytest.raises(RadlabDataError) as wrong:
        merge_shards(rows, [doubled if i == other else s for i, s in enumerate(shards)], tmp_path / "x", read)
    assert str(doubled) in str(wrong.value) and "belongs to shard" in str(wrong.value)
    with pytest.raises(RadlabDataError, match="lacks unit"):
        merge_shards(rows, [_write(tmp_path / "e.csv", "h\n"), *shards[1:]], tmp_path / "x", read)
    with pytest.raises(RadlabError, match="no shard file for shard 1 of 3"):
        ordered_shards([shards[0], shards[2]])
    assert not (tmp_path / "x").exists()


def test_torchrun_with_shard_auto_writes_one_shard_per_process_and_merge_joins_them(tiny, tmp_path):
    """The README's one-machine launch: `torchrun --nproc-per-node 2 -m radlab mura predict ... --shard auto`
    (here 2 CPU processes) writes OUTPUT.shard-I-of-2 per rank; merge gives the unsharded bytes."""
    import os
    import shutil
    import subprocess
    import sys

    from tests.conftest import run_radlab

    data, run = tiny.data("mura"), tiny.run("mura")
    paths = data / "MURA-v1.1" / "valid_image_paths.csv"
    args = ["--model", str(run), "--data-root", str(data), "--workers", "0", "--device", "cpu"]
    whole = run_radlab("mura", "predict", paths, tmp_path / "whole.csv", *args)
    assert whole.returncode == 0, whole.stderr
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    result = subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "radlab", "mura", "predict", str(paths),
         str(tmp_path / "preds.csv"), *args, "--shard", "auto"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    shards = sorted(tmp_path.glob("preds.shard-*-of-2.csv"))
    assert [p.name for p in shards] == ["preds.shard-0-of-2.csv", "preds.shard-1-of-2.csv"]
    merged = run_radlab("mura", "merge", paths, tmp_path / "merged.csv", *reversed(shards))
    assert merged.returncode == 0, merged.stderr
    assert (tmp_path / "merged.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
