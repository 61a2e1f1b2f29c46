"""Image transforms: albumentations pipelines that take their seed and return uint8 tensors."""

from radlab.core.transforms.image import ImageTransform, build_image_transform, seed_worker_transforms

__all__ = ["ImageTransform", "build_image_transform", "seed_worker_transforms"]
