import lightning as L
import torch
from torch import nn

from radlab.core.tune.pruning import PruningCallback


class _Tiny(L.LightningModule):
    def __init__(self, metrics):
        super().__init__()
        self.layer = nn.Linear(2, 1)
        self.metrics = iter(metrics)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        pass

    def on_validation_epoch_end(self):
        self.log("val/metric", next(self.metrics))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _Trial:
    """Prunes once `prune_at` values have been reported."""

    def __init__(self, prune_at):
        self.prune_at = prune_at
        self.reported = []

    def report(self, value, step):
        self.reported.append((step, round(value, 3)))

    def should_prune(self):
        return len(self.reported) >= self.prune_at


def _fit(callback, metrics, epochs):
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(4, 2)), batch_size=2)
    trainer = L.Trainer(
        max_epochs=epochs,
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
    )
    trainer.fit(_Tiny(metrics), data, data)
    return trainer


def test_the_pruner_stops_training_after_the_epoch_it_prunes():
    callback = PruningCallback(_Trial(prune_at=2), "val/metric")
    trainer = _fit(callback, [0.1, 0.2, 0.3, 0.4, 0.5], epochs=5)
    assert callback.pruned and trainer.current_epoch == 2
    assert callback.trial.reported == [(0, 0.1), (1, 0.2)]


def test_steps_keep_rising_across_trainers_and_unknown_metrics_are_not_reported():
    callback = PruningCallback(_Trial(prune_at=99), "val/metric")
    _fit(callback, [0.1, 0.2], epochs=2)
    _fit(callback, [0.3], epochs=1)
    assert callback.trial.reported == [(0, 0.1), (1, 0.2), (2, 0.3)] and not callback.pruned
    other = PruningCallback(_Trial(prune_at=99), "val/absent")
    _fit(other, [0.1], epochs=1)
    assert other.trial.reported == [] and other.step == 0
