"""A member's calibration inside an ensemble that averages per input: its logits divided by its run's
temperature (RUN/calibration.json) before the average."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from radlab.core.calibration import temperatures


class TemperatureScaled(nn.Module):
    """member(x) / T: sigmoid of it is sigmoid(logit(p) / T), the calibrated probability."""

    def __init__(self, member: nn.Module, temperature: float) -> None:
        super().__init__()
        self.member = member
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.member(x).float() / self.temperature


def with_temperature(member: nn.Module, run_dir: str | Path, label: str) -> nn.Module:
    """`member` scaled by its run's temperature for `label`; itself when the run is not calibrated."""
    found = temperatures(run_dir).get(label)
    return member if found is None else TemperatureScaled(member, found)
