"""The cropping policy: which part of a photo goes on to the embedder (pure, no TensorFlow)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from detector.detection import Detection
from numbpie.boxes import pad_box

__all__ = ["FLOOR", "CropResult", "crops", "find_garments"]

FLOOR = 0.05  # the lowest score at which a box still beats searching the whole photo


@dataclass(frozen=True)
class CropResult:
    """The crop of the best detection, the box it was cut from, and every detection for the UI."""

    crop: Image.Image
    box: tuple[int, int, int, int]
    detection: Detection | None
    detections: tuple[Detection, ...]
    whole_image: bool


def crops(image: Image.Image, detections: Sequence[Detection], margin: float = 0.1) -> CropResult:
    """Crop the highest-scoring detection with a margin; with none, keep the whole image."""
    if margin < 0:
        raise ValueError(f"The crop margin must be 0 or more, not {margin}.")
    ranked = tuple(sorted(detections, key=lambda d: d.score, reverse=True))
    if not ranked:
        return CropResult(image, (0, 0, *image.size), None, (), True)
    box = pad_box(ranked[0].box, image.size, margin)
    return CropResult(image.crop(box), box, ranked[0], ranked, False)


def find_garments(detector, image: Image.Image, threshold: float | None = None) -> list[Detection]:
    """The detector's boxes scoring at least `threshold` (its default when None), best first;
    when none does, its single best box if that scores at least FLOOR.

    A garment the detector is unsure of is still a far better query than the whole photo
    (on the synth test split, 27 of 561 street garments score between 0.05 and the bundled
    threshold 0.2, and a whole-photo query almost never finds them).
    """
    found = detector.detect(image, threshold=threshold)
    if found or (threshold is not None and threshold <= FLOOR):
        return found
    return detector.detect(image, threshold=FLOOR)[:1]
