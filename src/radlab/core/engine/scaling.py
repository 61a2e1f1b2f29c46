"""The Lightning launch flags every `radlab TASK train` takes (devices, strategy, nodes, accelerator), as
`--set` overrides of the engine section, so that they land in the run's config.yaml."""

from __future__ import annotations


def scaling_overrides(
    devices: str | None = None,
    strategy: str | None = None,
    num_nodes: int | None = None,
    accelerator: str | None = None,
    section: str = "train",
) -> list[str]:
    """The launch flags given (None: not given) as `--set` overrides of `section`."""
    values = {"devices": devices, "strategy": strategy, "num_nodes": num_nodes, "accelerator": accelerator}
    return [f"{section}.{key}={value}" for key, value in values.items() if value is not None]
