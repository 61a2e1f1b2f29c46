"""Models: one door (`create_backbone`) to timm backbones, plus the wrappers and weight files around them."""

from radlab.core.models.classifier import ImageClassifier, build_image_classifier
from radlab.core.models.factory import create_backbone, create_feature_extractor
from radlab.core.models.weights import load_trained, load_weights, save_weights

__all__ = [
    "ImageClassifier",
    "build_image_classifier",
    "create_backbone",
    "create_feature_extractor",
    "load_trained",
    "load_weights",
    "save_weights",
]
