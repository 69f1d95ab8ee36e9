"""What a detector returns: one labelled, scored box in pixels of the input image."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Detection"]


@dataclass(frozen=True)
class Detection:
    """A box (x0, y0, x1, y1) in pixels, its score in [0, 1] and its label."""

    box: tuple[float, float, float, float]
    score: float
    label: str
