import numpy as np
import torch
from torch.utils.data import Dataset

from radlab.core.infer import stream_predictions


class _Images(Dataset):
    def __init__(self, n):
        self.images = torch.randint(0, 255, (n, 1, 6, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return {"index": i, "image": self.images[i], "error": "bad" if i == 3 else ""}


class _LeftMinusRight(torch.nn.Module):
    def forward(self, x):
        x = x.float() / 255
        return (x[..., :3].mean(dim=(1, 2, 3)) - x[..., 3:].mean(dim=(1, 2, 3))).unsqueeze(1) * 4


def _collect(**kwargs):
    batches = list(stream_predictions(_LeftMinusRight(), _Images(11), num_workers=0, **kwargs))
    order = np.concatenate([b.indices for b in batches])
    probs = np.concatenate([b.probs for b in batches])[np.argsort(order)]
    errors = [e for b in batches for e in b.errors]
    return sorted(order.tolist()), probs, errors


def test_every_item_once_whatever_the_batch_size():
    order1, probs1, _ = _collect(batch_size=1)
    order4, probs4, errors = _collect(batch_size=4)
    assert order1 == order4 == list(range(11))
    np.testing.assert_allclose(probs1, probs4, atol=1e-6)
    assert errors.count("bad") == 1


def test_hflip_tta_averages_the_mirror():
    _, plain, _ = _collect(batch_size=4)
    _, tta, _ = _collect(batch_size=4, tta_hflip=True)
    # the model is antisymmetric under a flip, so the TTA mean is exactly 0.5
    np.testing.assert_allclose(tta, 0.5, atol=1e-6)
    assert np.abs(plain - 0.5).max() > 0.01
