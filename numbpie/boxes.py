"""Box arithmetic shared by the detector, the pipeline, the trainers and the evaluations (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

__all__ = ["crop_around", "iou", "pad_box"]


def pad_box(box: Sequence[float], image_size: tuple[int, int], margin: float = 0.1) -> tuple[int, int, int, int]:
    """Integer pixel box around `box`, grown by `margin` of its size per side, inside the image."""
    width, height = image_size
    x0, y0, x1, y1 = (float(v) for v in box)
    pad_x, pad_y = margin * max(x1 - x0, 0.0), margin * max(y1 - y0, 0.0)
    left = min(max(int(x0 - pad_x), 0), width - 1)
    top = min(max(int(y0 - pad_y), 0), height - 1)
    right = max(min(int(round(x1 + pad_x)), width), left + 1)
    bottom = max(min(int(round(y1 + pad_y)), height), top + 1)
    return left, top, right, bottom


def crop_around(image: Image.Image, box: Sequence[float], margin: float = 0.1) -> Image.Image:
    """The part of `image` inside `box` grown by `margin` (see `pad_box`)."""
    return image.crop(pad_box(box, image.size, margin))


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes; 0 when either is empty."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
