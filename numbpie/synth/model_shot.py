"""Model shots: the garment worn by a stylised figure on a plain studio background."""

from __future__ import annotations

import numpy as np
from PIL import Image

from numbpie.synth.figure import figure_layer
from numbpie.synth.garment import garment_regions
from numbpie.synth.geometry import pose_skeleton
from numbpie.synth.raster import Frame, blur, composite, poly_mask, to_image
from numbpie.synth.spec import GarmentSpec, spec_rng

__all__ = ["model_frame", "model_regions", "render_model"]

_BACKDROPS = (
    (0.86, 0.86, 0.84),
    (0.80, 0.84, 0.88),
    (0.90, 0.85, 0.80),
    (0.72, 0.74, 0.76),
    (0.86, 0.80, 0.84),
    (0.80, 0.86, 0.80),
)


def model_frame(size: int) -> Frame:
    """The figure, head to toe, filling most of a square frame."""
    scale = 0.9 * size
    return Frame((size, size), size / 2, 0.055 * size, scale)


def _backdrop(spec: GarmentSpec, frame: Frame) -> np.ndarray:
    rng = spec_rng(spec.seed, 7)
    w, h = frame.size
    color = np.asarray(_BACKDROPS[int(rng.integers(len(_BACKDROPS)))], np.float32) * rng.uniform(
        0.95, 1.04
    )
    ramp = np.linspace(1.03, 0.9, h, dtype=np.float32)[:, None, None]
    canvas = np.broadcast_to(color * ramp, (h, w, 3)).copy()
    shadow = poly_mask(frame, [(_floor_shadow(), 255)])
    return composite(canvas, blur(shadow, 0.015 * frame.scale) * 0.35, (0.0, 0.0, 0.0))


def _floor_shadow() -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    return np.column_stack([0.15 * np.cos(t), 0.975 + 0.022 * np.sin(t)])


def render_model(spec: GarmentSpec, size: int = 256) -> Image.Image:
    """The model shot of `spec`: worn by a posed figure on a plain background."""
    frame = model_frame(size)
    canvas = _backdrop(spec, frame)
    layer = figure_layer(spec, frame)
    canvas = canvas * (1 - layer.alpha[..., None]) + layer.color
    return to_image(canvas)


def model_regions(spec: GarmentSpec, size: int = 256) -> dict[str, np.ndarray]:
    """Per-attribute region masks of the model shot (see `garment_regions`)."""
    return garment_regions(spec, pose_skeleton(spec), model_frame(size))
