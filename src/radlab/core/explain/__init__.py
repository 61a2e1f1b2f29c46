"""What the model looked at: class activation maps and overlays on the original image."""

from radlab.core.explain.cam import (
    CamResult,
    class_activation_maps,
    feature_map_cam,
    plain_cam_applies,
    spatial_features,
)
from radlab.core.explain.explanation import Explanation, explain_each, write_explanations
from radlab.core.explain.overlay import draw_boxes, overlay_heatmap, save_png

__all__ = [
    "CamResult",
    "Explanation",
    "class_activation_maps",
    "draw_boxes",
    "explain_each",
    "feature_map_cam",
    "overlay_heatmap",
    "plain_cam_applies",
    "save_png",
    "spatial_features",
    "write_explanations",
]
