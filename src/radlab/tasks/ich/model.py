"""The two ICH networks: a slice classifier (6 logits, pooled embeddings) and the sequence BiLSTM."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from radlab.core.models import ImageClassifier, build_image_classifier
from radlab.tasks.ich.config import IchConfig


def build_slice_model(config: IchConfig, initialise: bool = True) -> ImageClassifier:
    """A timm backbone with 6 logits; normalisation with the recipe's window mean/std inside."""
    return build_image_classifier(
        config.model.backbone,
        6,
        config.data.mean,
        config.data.std,
        pretrained=config.model.pretrained and initialise,
        weights_file=config.model.weights_file if initialise else None,
        trust_pickle=config.model.trust_pickle,
    )


def slice_embeddings(model: ImageClassifier, pixels: torch.Tensor) -> torch.Tensor:
    """The pooled features before the classifier (the 2048-d GAP output for ResNeXt-101)."""
    features = model.backbone.forward_features(model.normalise(pixels))
    return model.backbone.forward_head(features, pre_logits=True)


class SliceEmbedder(nn.Module):
    """The slice classifier up to its pooled features, as a module (pixels -> embeddings): what ONNX exports;
    the 6-logit layer on top stays in PyTorch."""

    def __init__(self, model: ImageClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return slice_embeddings(self.model, pixels)


def embedding_size(model: ImageClassifier) -> int:
    return int(model.backbone.num_features)


class SequenceModel(nn.Module):
    """[e, e - prev, e - next] per slice -> 6 logits per slice.

    Two bidirectional LSTMs with E units each; the output adds both LSTMs' states, a ReLU dense layer on
    each, and the embedding itself (repeated for the two directions): the recipe's residual design, which
    fixes the hidden size to the embedding size."""

    def __init__(self, embedding_dim: int) -> None:
        super().__init__()
        e = embedding_dim
        self.embedding_dim = e
        self.lstm1 = nn.LSTM(3 * e, e, bidirectional=True, batch_first=True)
        self.lstm2 = nn.LSTM(2 * e, e, bidirectional=True, batch_first=True)
        self.dense1 = nn.Linear(2 * e, 2 * e)
        self.dense2 = nn.Linear(2 * e, 2 * e)
        self.out = nn.Linear(2 * e, 6)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        longest = features.shape[1]
        packed = pack_padded_sequence(features, lengths.cpu(), batch_first=True, enforce_sorted=False)
        h1, _ = self.lstm1(packed)
        h2, _ = self.lstm2(h1)
        h1, _ = pad_packed_sequence(h1, batch_first=True, total_length=longest)
        h2, _ = pad_packed_sequence(h2, batch_first=True, total_length=longest)
        embedding = features[..., : self.embedding_dim]
        hidden = h1 + h2 + F.relu(self.dense1(h1)) + F.relu(self.dense2(h2)) + torch.cat([embedding, embedding], -1)
        return self.out(hidden)
