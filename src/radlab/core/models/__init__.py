"""Models: one door (`create_backbone`) to timm backbones, plus the wrappers and weight files around them."""

from radlab.core.models.classifier import ImageClassifier
from radlab.core.models.factory import create_backbone, create_feature_extractor
from radlab.core.models.weights import load_weights, save_weights

__all__ = ["ImageClassifier", "create_backbone", "create_feature_extractor", "load_weights", "save_weights"]
