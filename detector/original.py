"""numbpie's original SSD300-VGG person detector: its anchors, tensor names and numpy decoding."""

from __future__ import annotations

import numpy as np

from detector.anchors import FeatureMap, decode, default_boxes, nms
from numbpie.errors import WeightsError

__all__ = [
    "CLASS_NAMES",
    "FEATURE_MAPS",
    "INPUT",
    "IOU_THRESHOLD",
    "LOCALISATIONS",
    "NET_SIZE",
    "PREDICTIONS",
    "THRESHOLD",
    "decode_outputs",
    "priors",
]

NET_SIZE = 300
CLASS_NAMES = ("background", "person")
THRESHOLD = 0.40
IOU_THRESHOLD = 0.45
TOP_K = 400  # candidates per class before NMS
INPUT = "Placeholder:0"
LOCALISATIONS = tuple(f"ssd_300_vgg/block{b}_box/Reshape:0" for b in (4, 7, 8, 9, 10, 11))
PREDICTIONS = ("ssd_300_vgg/softmax/Reshape_1:0",) + tuple(
    f"ssd_300_vgg/softmax_{i}/Reshape_1:0" for i in range(1, 6)
)
_SIZES = ((21, 45), (45, 99), (99, 153), (153, 207), (207, 261), (261, 315))
_RATIOS = ((0.5,), (0.5, 1 / 3), (0.5, 1 / 3), (0.5, 1 / 3), (0.5,), (0.5,))
_GRIDS = (38, 19, 10, 5, 3, 1)
_STEPS = (8, 16, 32, 64, 100, 300)
FEATURE_MAPS = [
    FeatureMap(size=g, step=s, sizes=z, aspect_ratios=r)
    for g, s, z, r in zip(_GRIDS, _STEPS, _SIZES, _RATIOS, strict=True)
]


def priors() -> np.ndarray:
    """(P, 4) centre-form priors of the original network, in its output order."""
    return default_boxes(FEATURE_MAPS, NET_SIZE)


def decode_outputs(
    localisations: list[np.ndarray],
    predictions: list[np.ndarray],
    image_size: tuple[int, int],
    threshold: float = THRESHOLD,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes in pixels (N, 4), scores (N,), labels (N,)) from the twelve raw output tensors.

    The original resized the whole image to 300x300, so normalised boxes map straight back.
    """
    offsets = np.concatenate([np.reshape(t, (-1, 4)) for t in localisations])
    probs = np.concatenate([np.reshape(t, (-1, t.shape[-1])) for t in predictions])
    anchors = priors()
    if len(offsets) != len(anchors) or len(probs) != len(anchors):
        raise WeightsError(
            f"The graph gives {len(offsets)} boxes for {len(anchors)} SSD300 anchors; "
            "is this numbpie's ssd_person_detector.pb?"
        )
    boxes = np.clip(decode(offsets, anchors), 0.0, 1.0)
    kept_boxes, kept_scores, kept_labels = [], [], []
    for label in range(1, probs.shape[1]):
        candidates = np.flatnonzero(probs[:, label] >= threshold)
        candidates = candidates[np.argsort(-probs[candidates, label], kind="stable")][:TOP_K]
        keep = candidates[nms(boxes[candidates], probs[candidates, label], IOU_THRESHOLD)]
        kept_boxes.append(boxes[keep])
        kept_scores.append(probs[keep, label])
        kept_labels.append(np.full(len(keep), label))
    width, height = image_size
    pixels = np.concatenate(kept_boxes) * np.array([width, height, width, height], np.float32)
    return pixels.astype(np.float32), np.concatenate(kept_scores), np.concatenate(kept_labels)
