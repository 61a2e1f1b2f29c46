"""Image transforms: albumentations pipelines that take their seed and return uint8 tensors."""

from radlab.core.transforms.image import ImageTransform, build_image_transform, seed_worker_transforms
from radlab.core.transforms.volume import VolumeTransform, minmax_to_uint8

__all__ = ["ImageTransform", "VolumeTransform", "build_image_transform", "minmax_to_uint8", "seed_worker_transforms"]
