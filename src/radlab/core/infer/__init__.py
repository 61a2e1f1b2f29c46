"""Batched, streaming prediction with bounded memory, optional flip TTA; ONNX Runtime engines."""

from radlab.core.infer.engines import ENGINES, engine_model
from radlab.core.infer.streaming import PredictedBatch, iterate_batches, pick_device, stream_predictions

__all__ = ["ENGINES", "PredictedBatch", "engine_model", "iterate_batches", "pick_device", "stream_predictions"]
