"""The detector: torchvision's RetinaNet parts on a timm backbone with an FPN, plus the global class head;
and the post-processing from its raw detections to submitted boxes.

We use RetinaNet's head, anchor generator, focal loss and box decoding, and run our own forward: one pass
returns the losses and the detections together (validation needs both), the global head reads the last
backbone stage, and images arrive already resized, so torchvision's resizing transform is not used.

Post-processing (shared by training's threshold sweep, predict, explain and bench): boxes back to original
pixels, relative pruning, the score threshold (optionally weighted by the global head), and the sweep that
picks that threshold on validation.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from timm.layers import freeze_batch_norm_2d
from torch import nn
from torchvision.models.detection import RetinaNet
from torchvision.models.detection._utils import BoxCoder, Matcher
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.retinanet import RetinaNetHead, RetinaNetRegressionHead
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelP6P7

from radlab.core.config import StrictModel
from radlab.core.errors import RadlabConfigError
from radlab.core.metrics.detection import Comparison, mean_average_precision
from radlab.core.models import create_backbone
from radlab.tasks.pneumonia import PneumoniaConfig
from radlab.tasks.pneumonia.data import xyxy_to_xywh

# Box deltas are divided by (0.1, 0.1, 0.2, 0.2), as in the recipe.
BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
# The recipe's smooth-L1 switch point (pytorch_retinanet/losses.py).
RECIPE_SMOOTH_L1_BETA = 1.0 / 9.0


class FPNBackbone(nn.Module):
    """A timm trunk's stages C2..C5 -> FPN levels (P2 or P3 up to P5), P6 and P7 from C5; also returns C5."""

    def __init__(self, trunk: Any, levels: tuple[int, ...], channels: int) -> None:
        super().__init__()
        if not levels or min(levels) < 2 or max(levels) != 7 or sorted(levels) != list(range(min(levels), 8)):
            raise RadlabConfigError(f"model.levels must run from 2 or higher up to 7, got {levels}")
        self.trunk = trunk
        self.first = min(levels)
        in_channels = trunk.feature_info.channels()[self.first - 2 :]
        self.fpn = FeaturePyramidNetwork(in_channels, channels, extra_blocks=LastLevelP6P7(in_channels[-1], channels))
        self.out_channels = channels
        self.last_stage_channels = trunk.feature_info.channels()[-1]

    def forward(self, images: torch.Tensor) -> tuple[OrderedDict[str, torch.Tensor], torch.Tensor]:
        stages = self.trunk(images)
        used = stages[self.first - 2 :]
        pyramid = self.fpn(OrderedDict((f"c{self.first + i}", s) for i, s in enumerate(used)))
        return pyramid, stages[-1]


class OffsetAnchorGenerator(AnchorGenerator):
    """torchvision's anchors with their centres at (i + offset) x stride instead of i x stride (the recipe's
    pytorch_retinanet/anchors.py shift() puts them at (i + 0.5) x stride)."""

    def __init__(self, sizes: Sequence[Sequence[float]], aspect_ratios: Sequence[Sequence[float]], offset: float):
        super().__init__(tuple(tuple(s) for s in sizes), tuple(tuple(a) for a in aspect_ratios))
        self.offset = offset

    def grid_anchors(self, grid_sizes: list[list[int]], strides: list[list[torch.Tensor]]) -> list[torch.Tensor]:
        anchors = super().grid_anchors(grid_sizes, strides)
        if not self.offset:
            return anchors
        shifted = []
        for level, (stride_y, stride_x) in zip(anchors, strides, strict=True):
            step = torch.stack([stride_x, stride_y, stride_x, stride_y]).to(level)
            shifted.append(level + self.offset * step)
        return shifted


class RecipeRegressionHead(RetinaNetRegressionHead):
    """RetinaNet's box head with the recipe's loss (pytorch_retinanet/losses.py): smooth L1 with beta 1/9 on the
    encoded deltas, the mean over each image's positive anchors x 4 coordinates (0 for an image without any),
    then the mean over images. torchvision's sums the 4 coordinates per positive anchor and uses beta 1."""

    def compute_loss(
        self,
        targets: list[dict[str, torch.Tensor]],
        head_outputs: dict[str, torch.Tensor],
        anchors: list[torch.Tensor],
        matched_idxs: list[torch.Tensor],
    ) -> torch.Tensor:
        losses = []
        for target, regression, image_anchors, matched in zip(
            targets, head_outputs["bbox_regression"], anchors, matched_idxs, strict=True
        ):
            positive = torch.where(matched >= 0)[0]
            if positive.numel() == 0:
                losses.append(regression[positive].sum())
                continue
            wanted = self.box_coder.encode_single(target["boxes"][matched[positive]], image_anchors[positive])
            losses.append(F.smooth_l1_loss(regression[positive], wanted, beta=RECIPE_SMOOTH_L1_BETA))
        return torch.stack(losses).mean()


class GlobalHead(nn.Module):
    """C5 -> max-pool 2 -> 3x3 conv (256) -> ReLU -> [global average, global max] -> dropout -> 3 log-probs."""

    def __init__(self, channels: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 256, kernel_size=3)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(512, 3)

    def forward(self, last_stage: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(last_stage, 2) if min(last_stage.shape[-2:]) >= 2 else last_stage
        if min(x.shape[-2:]) < 3:
            x = F.pad(x, (1, 1, 1, 1))
        x = F.relu(self.conv(x))
        pooled = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
        return F.log_softmax(self.fc(self.dropout(pooled)), dim=1)


class PneumoniaDetector(nn.Module):
    """Grayscale pixels (B, 1, S, S) in 0..255 -> box losses / detections and the 3-class log-probabilities."""

    def __init__(self, config: PneumoniaConfig, initialise: bool = True) -> None:
        super().__init__()
        model = config.model
        trunk = create_backbone(
            model.backbone,
            num_classes=0,
            **model.weights(initialise),
            features_only=True,
            out_indices=(1, 2, 3, 4),
        )
        if model.freeze_bn == "all":
            trunk = freeze_batch_norm_2d(trunk)
        self.bn_stats_frozen = model.freeze_bn == "stats"
        backbone = FPNBackbone(trunk, model.levels, model.fpn_channels)
        sizes = tuple(tuple(2 ** (level + 2) * 2 ** (k / 3) for k in range(3)) for level in model.levels)
        ratios = ((0.5, 1.0, 2.0),) * len(sizes)
        anchors = OffsetAnchorGenerator(sizes, ratios, model.anchor_offset)
        per_location = anchors.num_anchors_per_location()[0]
        head = RetinaNetHead(model.fpn_channels, per_location, num_classes=1)
        head.classification_head.cls_logits = nn.Sequential(
            nn.Dropout(model.head_dropout), head.classification_head.cls_logits
        )
        if model.box_loss == "original":
            head.regression_head = RecipeRegressionHead(model.fpn_channels, per_location)
        head.regression_head._loss_type = "smooth_l1"
        head.regression_head.box_coder = BoxCoder(BOX_WEIGHTS)
        post = config.postprocess
        self.retinanet = RetinaNet(
            backbone,
            num_classes=1,
            anchor_generator=anchors,
            head=head,
            score_thresh=post.score_floor,
            nms_thresh=post.nms_iou,
            detections_per_img=post.max_detections,
            proposal_matcher=Matcher(0.5, 0.4, allow_low_quality_matches=model.low_quality_matches),
        )
        self.retinanet.box_coder = BoxCoder(BOX_WEIGHTS)
        self.global_head = GlobalHead(backbone.last_stage_channels, model.global_dropout)
        self.mean, self.std = config.data.mean, config.data.std

    def train(self, mode: bool = True) -> PneumoniaDetector:
        """With `freeze_bn: stats` every batch-norm layer stays in eval mode (its running statistics frozen,
        its scale and shift still trained), as the recipe's freeze_bn() after each model.train()."""
        super().train(mode)
        if self.bn_stats_frozen:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        x = (pixels.float() / 255.0 - self.mean) / self.std
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x

    def forward(
        self, pixels: torch.Tensor, targets: list[dict[str, torch.Tensor]] | None = None, detect: bool = False
    ) -> dict[str, Any]:
        """{"losses": {...}} when `targets` are given, {"detections": [...]} when `detect` (boxes x1y1x2y2 in
        input pixels), and always "global" (B, 3) log-probabilities."""
        raw = self.raw_outputs(pixels)
        out: dict[str, Any] = {"global": raw["global"]}
        if targets is not None:
            out["losses"] = self.retinanet.compute_loss(targets, raw["head"], raw["anchors"])
        if detect:
            out["detections"] = self.decode(raw)
        return out

    def raw_outputs(self, pixels: torch.Tensor) -> dict[str, Any]:
        """Head outputs per anchor, the anchors, level sizes and global log-probabilities (for ensembles)."""
        head, global_log_probs, level_shapes = self.dense_outputs(pixels)
        return self.assemble(head, global_log_probs, pixels, level_shapes)

    def dense_outputs(
        self, pixels: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, list[tuple[int, int]]]:
        """The network itself: per-anchor head outputs, global log-probabilities, each level's (h, w)."""
        pyramid, last_stage = self.retinanet.backbone(self.normalise(pixels))
        features = list(pyramid.values())
        shapes = [(int(f.shape[-2]), int(f.shape[-1])) for f in features]
        return self.retinanet.head(features), self.global_head(last_stage), shapes

    def assemble(
        self,
        head: dict[str, torch.Tensor],
        global_log_probs: torch.Tensor,
        pixels: torch.Tensor,
        level_shapes: list[tuple[int, int]],
    ) -> dict[str, Any]:
        """raw_outputs from the network's outputs: the anchors need only the image and level sizes."""
        sizes = [tuple(pixels.shape[-2:])] * pixels.shape[0]
        levels = [pixels.new_empty((pixels.shape[0], 0, h, w), dtype=torch.float32) for h, w in level_shapes]
        return {
            "head": head,
            "anchors": self.retinanet.anchor_generator(ImageList(pixels, sizes), levels),
            "per_level": [h * w for h, w in level_shapes],
            "image_sizes": sizes,
            "global": global_log_probs,
        }

    def decode(self, raw: dict[str, Any]) -> list[dict[str, torch.Tensor]]:
        """Boxes, scores after the score floor, top-k and NMS, as torchvision's RetinaNet decodes them."""
        head = raw["head"]
        per_anchor = head["cls_logits"].shape[1] // sum(raw["per_level"])
        split = [n * per_anchor for n in raw["per_level"]]
        outputs = {key: list(value.split(split, dim=1)) for key, value in head.items()}
        anchors = [list(a.split(split)) for a in raw["anchors"]]
        return self.retinanet.postprocess_detections(outputs, anchors, raw["image_sizes"])


class DenseDetector(nn.Module):
    """The detector's network as one module, pixels in, (cls_logits, bbox_regression, global) out: what
    ONNX exports; anchors, decoding and NMS stay in PyTorch."""

    outputs = ("cls_logits", "bbox_regression", "global")

    def __init__(self, detector: PneumoniaDetector) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        head, global_log_probs, _ = self.detector.dense_outputs(pixels)
        return head["cls_logits"], head["bbox_regression"], global_log_probs


class EngineDetector(nn.Module):
    """A detector whose network runs in another engine (ONNX Runtime, which returns DenseDetector's
    outputs); the level sizes come from the file's metadata, decoding from the PyTorch detector."""

    def __init__(self, network: nn.Module, detector: PneumoniaDetector, level_shapes: list[tuple[int, int]]):
        super().__init__()
        self.network = network
        self.detector = detector
        self.level_shapes = level_shapes

    def raw_outputs(self, pixels: torch.Tensor) -> dict[str, Any]:
        cls_logits, bbox_regression, global_log_probs = self.network(pixels)
        head = {"cls_logits": cls_logits, "bbox_regression": bbox_regression}
        return self.detector.assemble(head, global_log_probs, pixels, self.level_shapes)

    def decode(self, raw: dict[str, Any]) -> list[dict[str, torch.Tensor]]:
        return self.detector.decode(raw)

    def forward(self, pixels: torch.Tensor, detect: bool = False) -> dict[str, Any]:
        raw = self.raw_outputs(pixels)
        return {"global": raw["global"], **({"detections": self.decode(raw)} if detect else {})}


def opacity_weight(global_log_probs: torch.Tensor) -> torch.Tensor:
    """p(Lung Opacity) + 0.1 p(No Lung Opacity / Not Normal): the recipe's use of the global head."""
    probs = global_log_probs.exp()
    return probs[:, 2] + 0.1 * probs[:, 0]


def export_metadata(detector: PneumoniaDetector, size: int) -> dict[str, str]:
    """What an exported detector's file carries: the image size and each level's (h, w) at that size."""
    with torch.no_grad():
        _, _, shapes = detector.dense_outputs(torch.zeros(1, 1, size, size))
    return {"image_size": str(size), "level_shapes": json.dumps(shapes)}


def logit(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(1e-6, 1 - 1e-6)
    return torch.log(p) - torch.log1p(-p)


class PostprocessFile(StrictModel):
    """What RUN/postprocess.json must hold: the chosen score threshold (null before any sweep) and the
    pruning, as numbers in range."""

    score_threshold: float | None = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    relative_prune: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    nms_iou: float = Field(gt=0.0, le=1.0, allow_inf_nan=False)
    use_global: bool


def to_original(boxes_xyxy: np.ndarray, input_size: int, original: tuple[int, int]) -> np.ndarray:
    """Boxes predicted on the S x S input -> (x, y, w, h) in the original image's pixels."""
    height, width = original
    scale = np.array([width / input_size, height / input_size] * 2)
    return xyxy_to_xywh(np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4) * scale)


def select(
    boxes: np.ndarray, scores: np.ndarray, threshold: float, relative: float, weight: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Drop boxes below `relative` x the image's top score, then keep those whose score (sqrt(score x weight)
    when the global head weighs in) exceeds `threshold`."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) == 0:
        return np.zeros((0, 4)), scores
    keep = scores >= relative * scores.max()
    adjusted = np.sqrt(scores * weight) if weight is not None else scores
    keep &= adjusted > threshold
    return boxes[keep], adjusted[keep]


def threshold_sweep(
    truth: Sequence[np.ndarray],
    boxes: Sequence[np.ndarray],
    scores: Sequence[np.ndarray],
    thresholds: Sequence[float],
    relative: float,
    comparison: Comparison = ">=",
    weights: Sequence[float] | None = None,
) -> dict[float, float]:
    """mAP at each score threshold."""
    table = {}
    for threshold in thresholds:
        chosen = [
            select(b, s, threshold, relative, None if weights is None else weights[i])
            for i, (b, s) in enumerate(zip(boxes, scores, strict=True))
        ]
        value, _, _ = mean_average_precision(
            truth, [c[0] for c in chosen], [c[1] for c in chosen], comparison=comparison
        )
        table[float(threshold)] = value
    return table


def best_threshold(table: dict[float, float]) -> tuple[float, float]:
    """(threshold, mAP) with the highest mAP (the lowest threshold among ties); NaN-safe."""
    finite = {t: v for t, v in table.items() if not np.isnan(v)}
    if not finite:
        return next(iter(table)), float("nan")
    top = max(finite.values())
    return min(t for t, v in finite.items() if v == top), top
