"""`radlab bench train`: each precision variant trains through the task's own training (fp32 in contiguous
memory, bf16 autocast with channels_last weights), in interleaved order, with compute and waiting on data
timed apart; the items counted from every task's batch shape; bad options as one line."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from torch import nn

from radlab.core.bench import train as bench_train_module
from radlab.core.bench.train import StepTimer, batch_items, bench_train
from radlab.core.engine.trainer import extra_callbacks
from radlab.core.errors import RadlabConfigError, RadlabError
from radlab.core.task import get_task

TOY_SETS = ["train.progress=quiet"]


@pytest.mark.parametrize(
    ("batch", "items"),
    [
        (torch.zeros(3, 1, 8, 8), 3),
        ({"index": torch.arange(5), "image": torch.zeros(7, 1, 4, 4)}, 5),  # MRNet, ICH: indices first
        ({"image": torch.zeros(2, 3, 4, 4), "targets": [{}, {}], "category": torch.zeros(2)}, 2),  # pneumonia
        ({"error": ["", "", "", ""], "label": torch.zeros(4)}, 4),  # MURA's per-item read errors
        ([torch.zeros(6, 2), torch.zeros(6)], 6),
        ({"something": 1}, 1),
    ],
    ids=["tensor", "index", "image", "error", "tuple", "unknown"],
)
def test_batch_items_counts_the_items_of_every_tasks_batch(batch, items):
    assert batch_items(batch) == items


class _Module:
    device = torch.device("cpu")


def test_the_step_timer_splits_computing_from_waiting_and_skips_the_warm_up(monkeypatch):
    clock = iter([0.0, 1.0, 3.0, 4.0, 4.5, 6.0])  # start, end of each of three steps
    monkeypatch.setattr(bench_train_module.time, "perf_counter", lambda: next(clock))
    timer = StepTimer(warmup=1)
    batch = torch.zeros(4, 1, 2, 2)
    for step in range(3):
        timer.on_train_batch_start(None, _Module(), batch, step)  # type: ignore[arg-type]
        timer.on_train_batch_end(None, _Module(), {"loss": torch.tensor(0.25)}, batch, step)  # type: ignore[arg-type]
    assert timer.summary() == {
        "items_per_s": 8 / 5.0,  # two timed steps of 4: 2.5 s computing, 2.5 s waiting before them
        "timed_steps": 2,
        "items": 8,
        "data_wait_fraction": 0.5,
        "first_step_loss": 0.25,
    }


class _Spy(L.Callback):
    """What every training step of every Trainer ran under: its precision and its convolutions' memory layout."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, idx) -> None:
        conv = next(m for m in pl_module.modules() if isinstance(m, nn.Conv2d) and m.in_channels > 1)
        channels_last = conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
        self.seen.append((str(trainer.precision), channels_last))


def test_both_variants_train_as_they_say_in_alternating_order_and_report_their_rates():
    spy = _Spy()
    with extra_callbacks(spy):
        report = bench_train(get_task("toy"), steps=2, warmup=1, repeats=2, config_name="cpu-small", overrides=TOY_SETS)
    fp32, bf16 = ("32-true", False), ("bf16-mixed", True)
    assert spy.seen == [fp32] * 3 + [bf16] * 3 + [bf16] * 3 + [fp32] * 3  # the second repeat starts with bf16
    assert report["reference"] == "fp32" and report["radlab"] == "bf16" and list(report["variants"]) == ["fp32", "bf16"]
    batch = report["batch_size"]
    for variant in report["variants"].values():
        assert variant["timed_steps"] == 2 and variant["items"] == 2 * batch
        assert variant["items_per_s"] > 0 and 0.0 <= variant["data_wait_fraction"] < 1.0
        assert math.isfinite(variant["first_step_loss"])
        assert variant["full_epoch_hours"] == pytest.approx(report["epoch_items"] / variant["items_per_s"] / 3600)
        assert variant["peak_device_memory_mb"] is None  # a CPU run
    assert report["variants"]["fp32"]["speedup"] == 1.0
    assert report["speedup"] == report["variants"]["bf16"]["speedup"] > 0
    assert report["radlab_items_per_s"] == report["variants"]["bf16"]["items_per_s"]
    assert report["device"].startswith("cpu") and report["loader_workers"] == 0


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"variants": ("fp16",)}, RadlabConfigError, "unknown variant 'fp16'; choose from fp32, bf16"),
        ({"device": "tpu"}, RadlabConfigError, "--device 'tpu': choose cpu, cuda or auto"),
        ({"device": "cuda"}, RadlabError, "--device cuda: PyTorch sees no CUDA device on this machine"),
    ],
    ids=["variant", "device", "no-cuda"],
)
def test_bad_options_are_one_line_before_anything_trains(monkeypatch, options, error, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(error) as raised:
        bench_train(get_task("toy"), **options)
    assert str(raised.value) == message


def test_a_variant_named_twice_is_measured_once():
    report = bench_train(
        get_task("toy"), steps=1, variants=("fp32", "fp32"), config_name="cpu-small", overrides=TOY_SETS
    )
    assert list(report["variants"]) == ["fp32"] and report["speedup"] == 1.0


def test_a_task_without_a_train_plan_says_so(monkeypatch):
    task = get_task("toy")
    monkeypatch.setattr(type(task.bench.get()), "train", None)
    with pytest.raises(RadlabError, match="no `bench train` for toy"):
        bench_train(task)
