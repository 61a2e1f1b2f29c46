"""Batched, streaming prediction with bounded memory, optional flip TTA."""

from radlab.core.infer.streaming import PredictedBatch, pick_device, stream_predictions

__all__ = ["PredictedBatch", "pick_device", "stream_predictions"]
