"""Run trained unit networks over exams plane by plane: each series is read once per plane and every
network of that plane sees it in the same packed batch."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from radlab.core.infer import iterate_batches, pick_device
from radlab.core.transforms import VolumeTransform
from radlab.tasks.mrnet.data import SeriesDataset, collate_exams
from radlab.tasks.mrnet.model import Unit

ErrorHandler = Callable[[str, int, str], None]


def unit_logits(
    models: Mapping[Unit, torch.nn.Module],
    paths: Mapping[str, Sequence[Path | None]],
    image_size: int,
    *,
    batch_size: int = 4,
    num_workers: int = 2,
    device: str | torch.device = "auto",
    tta_hflip: bool = False,
    on_error: ErrorHandler | None = None,
) -> dict[tuple[str, str], np.ndarray]:
    """{(task, plane): (n,) logits} for every exam; NaN where the plane is missing or unreadable."""
    device = pick_device(device) if isinstance(device, str) else device
    n = len(next(iter(paths.values())))
    logits = {(task, unit.plane): np.full(n, np.nan) for unit in models for task in unit.tasks}
    transform = VolumeTransform(image_size)
    for plane in sorted({unit.plane for unit in models}):
        of_plane = [
            (unit, model.to(device).eval().to(memory_format=torch.channels_last))
            for unit, model in models.items()
            if unit.plane == plane
        ]
        dataset = SeriesDataset({plane: paths[plane]}, transform)
        batches = iterate_batches(
            dataset,
            batch_size=batch_size,
            num_workers=num_workers,
            collate_fn=collate_exams,
            description=f"{plane} series",
        )
        with torch.inference_mode():
            for batch in batches:
                packed = batch["planes"][plane]
                index = batch["index"].numpy()
                readable = packed["readable"].numpy()
                if on_error is not None:
                    for i, error in zip(index, batch["errors"][plane], strict=True):
                        if error:
                            on_error(plane, int(i), error)
                slices = packed["slices"].to(device).contiguous(memory_format=torch.channels_last)
                lengths = packed["lengths"].to(device)
                for unit, model in of_plane:
                    out = model(slices, lengths).float()
                    if tta_hflip:
                        out = (out + model(slices.flip(-1), lengths).float()) / 2
                    out = out.cpu().numpy()
                    for k, task in enumerate(unit.tasks):
                        logits[(task, plane)][index[readable]] = out[readable, k]
    return logits
