"""Batched, streaming prediction with bounded memory, optional flip TTA."""

from radlab.core.infer.streaming import PredictedBatch, iterate_batches, pick_device, stream_predictions

__all__ = ["PredictedBatch", "iterate_batches", "pick_device", "stream_predictions"]
