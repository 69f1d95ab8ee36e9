"""SSD default boxes, box coding, IoU, matching and NMS: pure numpy on (N, 4) arrays."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PRIOR_SCALING",
    "FeatureMap",
    "decode",
    "default_boxes",
    "encode",
    "iou",
    "match",
    "nms",
    "to_center",
    "to_corners",
]

# Variances of the usual SSD box coding, in (cx, cy, w, h) order.
PRIOR_SCALING = (0.1, 0.1, 0.2, 0.2)


@dataclass(frozen=True)
class FeatureMap:
    """One SSD feature map: its grid size, step and anchor sizes in pixels of the network input.

    Each location gets a square box of `sizes[0]`, a square of sqrt(sizes[0] * sizes[1]) when
    there is a second size, then one box of `sizes[0]` per aspect ratio r (width/height = r).
    """

    size: int | tuple[int, int]
    step: float | tuple[float, float]
    sizes: tuple[float, ...]
    aspect_ratios: tuple[float, ...] = ()

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, cols) of the map."""
        return (self.size, self.size) if isinstance(self.size, int) else tuple(self.size)

    @property
    def num_anchors(self) -> int:
        """Boxes per location."""
        return min(len(self.sizes), 2) + len(self.aspect_ratios)

    def anchor_shapes(self) -> np.ndarray:
        """(A, 2) widths and heights in pixels, in the order described above."""
        shapes = [(self.sizes[0], self.sizes[0])]
        if len(self.sizes) > 1:
            mean = math.sqrt(self.sizes[0] * self.sizes[1])
            shapes.append((mean, mean))
        for ratio in self.aspect_ratios:
            root = math.sqrt(ratio)
            shapes.append((self.sizes[0] * root, self.sizes[0] / root))
        return np.asarray(shapes, dtype=np.float64)


def default_boxes(
    feature_maps: list[FeatureMap], image_size: int | tuple[int, int], offset: float = 0.5
) -> np.ndarray:
    """(P, 4) float32 priors (cx, cy, w, h) normalised to the input, ordered map, row, col, anchor."""
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    blocks = []
    for fmap in feature_maps:
        rows, cols = fmap.grid
        step_y, step_x = (fmap.step, fmap.step) if np.isscalar(fmap.step) else fmap.step
        cy = (np.arange(rows) + offset) * step_y / height
        cx = (np.arange(cols) + offset) * step_x / width
        shapes = fmap.anchor_shapes() / np.array([width, height])
        grid_y, grid_x = np.meshgrid(cy, cx, indexing="ij")
        count = rows * cols * len(shapes)
        centres = np.repeat(np.stack([grid_x.ravel(), grid_y.ravel()], 1), len(shapes), axis=0)
        sizes = np.tile(shapes, (rows * cols, 1))
        blocks.append(np.concatenate([centres, sizes], 1).reshape(count, 4))
    return np.concatenate(blocks).astype(np.float32)


def to_center(boxes: np.ndarray) -> np.ndarray:
    """Corner boxes (x0, y0, x1, y1) to centre form (cx, cy, w, h)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    size = boxes[..., 2:] - boxes[..., :2]
    return np.concatenate([boxes[..., :2] + size / 2, size], -1)


def to_corners(boxes: np.ndarray) -> np.ndarray:
    """Centre boxes (cx, cy, w, h) to corner form (x0, y0, x1, y1)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    half = boxes[..., 2:] / 2
    return np.concatenate([boxes[..., :2] - half, boxes[..., :2] + half], -1)


def encode(boxes: np.ndarray, priors: np.ndarray, scaling=PRIOR_SCALING) -> np.ndarray:
    """SSD offsets (tx, ty, tw, th) of corner `boxes` relative to centre-form `priors`."""
    center = to_center(boxes)
    priors = np.asarray(priors, dtype=np.float64)
    scaling = np.asarray(scaling, dtype=np.float64)
    shift = (center[..., :2] - priors[..., :2]) / priors[..., 2:] / scaling[:2]
    # Degenerate (zero-size) boxes only ever pair with background; keep their offsets finite.
    ratio = np.maximum(center[..., 2:], 1e-8) / priors[..., 2:]
    return np.concatenate([shift, np.log(ratio) / scaling[2:]], -1).astype(np.float32)


def decode(offsets: np.ndarray, priors: np.ndarray, scaling=PRIOR_SCALING) -> np.ndarray:
    """Corner boxes from SSD `offsets` relative to centre-form `priors` (inverse of encode)."""
    offsets = np.asarray(offsets, dtype=np.float64)
    priors = np.asarray(priors, dtype=np.float64)
    scaling = np.asarray(scaling, dtype=np.float64)
    centre = priors[..., :2] + offsets[..., :2] * scaling[:2] * priors[..., 2:]
    size = priors[..., 2:] * np.exp(np.minimum(offsets[..., 2:] * scaling[2:], 10.0))
    return to_corners(np.concatenate([centre, size], -1)).astype(np.float32)


def iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """(N, M) intersection over union of corner boxes; 0 where both boxes are empty."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=-1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def match(
    gt_boxes: np.ndarray, gt_labels: np.ndarray, priors: np.ndarray, threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Assign ground truth to priors: (labels (P,) with 0 = background, matched corner boxes (P, 4)).

    A prior takes the ground-truth box it overlaps most when that IoU reaches `threshold`;
    every ground-truth box also takes its own best prior, whatever the overlap.
    """
    priors = np.asarray(priors, dtype=np.float64)
    labels = np.zeros(len(priors), dtype=np.int32)
    matched = np.zeros((len(priors), 4), dtype=np.float32)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    if len(gt_boxes) == 0:
        return labels, matched
    overlaps = iou(gt_boxes, to_corners(priors))  # (G, P)
    best_gt = overlaps.argmax(0)
    best_overlap = overlaps.max(0)
    forced = overlaps.argmax(1)  # best prior of each ground-truth box
    best_gt[forced] = np.arange(len(gt_boxes))
    best_overlap[forced] = 1.0
    positive = best_overlap >= threshold
    labels[positive] = np.asarray(gt_labels, dtype=np.int32)[best_gt[positive]]
    matched[:] = gt_boxes[best_gt]
    return labels, matched


def nms(
    boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.45, max_out: int | None = None
) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, best score first."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    keep = []
    while order.size and (max_out is None or len(keep) < max_out):
        best = order[0]
        keep.append(best)
        rest = order[1:]
        order = rest[iou(boxes[best], boxes[rest])[0] <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)
