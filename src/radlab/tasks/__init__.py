"""radlab's own challenges, one package each; each registers its `TASK` through the `radlab.tasks` entry
points in pyproject.toml (see radlab.core.task)."""
