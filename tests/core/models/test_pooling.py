import pytest
import torch

from radlab.core.models.pooling import segment_max, segment_mean


@pytest.mark.parametrize("lengths", [[1], [3, 1, 2], [5, 5]])
def test_segment_pooling_matches_a_loop(lengths):
    values = torch.randn(sum(lengths), 4, requires_grad=True)
    counts = torch.tensor(lengths)
    parts = torch.split(values, lengths)
    assert torch.equal(segment_max(values, counts), torch.stack([p.max(dim=0).values for p in parts]))
    assert torch.allclose(segment_mean(values, counts), torch.stack([p.mean(dim=0) for p in parts]))
    segment_max(values, counts).sum().backward()
    assert values.grad.sum() == len(lengths) * 4  # one winner per group and feature
