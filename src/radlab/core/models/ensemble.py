"""Several trained members behind one forward: their sigmoid probabilities averaged, returned as logits so
that every prediction path (sigmoid after the model) works unchanged."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ProbabilityAverage(nn.Module):
    """logit(mean_k sigmoid(member_k(x))): the k-fold ensemble of binary or multi-label classifiers."""

    def __init__(self, members: Sequence[nn.Module], eps: float = 1e-7) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([torch.sigmoid(member(x).float()) for member in self.members]).mean(dim=0)
        return torch.logit(probs, eps=self.eps)
