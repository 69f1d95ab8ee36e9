"""The cropping policy: which part of a photo goes on to the embedder (pure, no TensorFlow)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from detector.detection import Detection

__all__ = ["CropResult", "crop_box", "crops"]


@dataclass(frozen=True)
class CropResult:
    """The crop of the best detection, the box it was cut from, and every detection for the UI."""

    crop: Image.Image
    box: tuple[int, int, int, int]
    detection: Detection | None
    detections: tuple[Detection, ...]
    whole_image: bool


def crop_box(
    box: Sequence[float], image_size: tuple[int, int], margin: float = 0.1
) -> tuple[int, int, int, int]:
    """Integer pixel box around `box`, grown by `margin` of its size per side, inside the image."""
    width, height = image_size
    x0, y0, x1, y1 = (float(v) for v in box)
    pad_x, pad_y = margin * max(x1 - x0, 0.0), margin * max(y1 - y0, 0.0)
    left = min(max(int(x0 - pad_x), 0), width - 1)
    top = min(max(int(y0 - pad_y), 0), height - 1)
    right = max(min(int(round(x1 + pad_x)), width), left + 1)
    bottom = max(min(int(round(y1 + pad_y)), height), top + 1)
    return left, top, right, bottom


def crops(image: Image.Image, detections: Sequence[Detection], margin: float = 0.1) -> CropResult:
    """Crop the highest-scoring detection with a margin; with none, keep the whole image."""
    if margin < 0:
        raise ValueError(f"The crop margin must be 0 or more, not {margin}.")
    ranked = tuple(sorted(detections, key=lambda d: d.score, reverse=True))
    if not ranked:
        return CropResult(image, (0, 0, *image.size), None, (), True)
    box = crop_box(ranked[0].box, image.size, margin)
    return CropResult(image.crop(box), box, ranked[0], ranked, False)
