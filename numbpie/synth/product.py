"""Product shots: the garment laid flat, front view, centred on a light studio background."""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

from numbpie.synth.garment import garment_layers, garment_regions
from numbpie.synth.geometry import flat_skeleton
from numbpie.synth.raster import Frame, composite, to_image
from numbpie.synth.spec import GarmentSpec, spec_rng

__all__ = ["garment_mask", "product_frame", "product_regions", "product_shot", "render_product"]


def product_frame(spec: GarmentSpec, size: int) -> Frame:
    """The placement of a product: tops and dresses each at one fixed scale, so edits never move it."""
    if spec.category == "top":
        scale = 1.5 * size
        return Frame((size, size), size / 2, size / 2 - 0.335 * scale, scale)
    scale = 1.12 * size
    return Frame((size, size), size / 2, size / 2 - 0.548 * scale, scale)


@functools.lru_cache(maxsize=8)
def _studio_light(size: int) -> np.ndarray:
    """Brightness of the studio backdrop: a soft top-to-bottom ramp and a faint vignette."""
    ramp = np.linspace(1.02, 0.96, size, dtype=np.float32)[:, None]
    axis = np.arange(size, dtype=np.float32) / size - 0.5
    vignette = 1.0 - 0.08 * (axis[:, None] ** 2 + axis[None, :] ** 2)
    return (ramp * vignette)[..., None]


def _studio(spec: GarmentSpec, size: int) -> np.ndarray:
    """A light, softly lit backdrop whose tint comes from the spec's seed."""
    rng = spec_rng(spec.seed, 2)
    base = (rng.uniform(0.9, 0.97) + rng.normal(0, 0.012, 3)).astype(np.float32)
    return np.clip(base * _studio_light(size), 0, 1)


def render_product(spec: GarmentSpec, size: int = 256) -> Image.Image:
    """The product shot of `spec`: front view, centred, light studio background."""
    return product_shot(spec, size)[0]


def product_shot(spec: GarmentSpec, size: int = 256) -> tuple[Image.Image, np.ndarray]:
    """The product shot of `spec` and the garment's coverage of each pixel (float32 in [0, 1]), from one rasterisation."""
    frame = product_frame(spec, size)
    canvas = _studio(spec, size)
    layers = garment_layers(spec, flat_skeleton(spec), frame, sleeves_under=True)
    for name in ("back", "sleeves", "body"):
        composite(canvas, *layers[name])
    coverage = np.maximum.reduce([layers[name][0] for name in ("back", "sleeves", "body")])
    return to_image(canvas), np.asarray(coverage, np.float32)


def product_regions(spec: GarmentSpec, size: int = 256) -> dict[str, np.ndarray]:
    """Per-attribute region masks of the product shot (see `garment_regions`)."""
    return garment_regions(spec, flat_skeleton(spec), product_frame(spec, size))


def garment_mask(spec: GarmentSpec, size: int = 256) -> np.ndarray:
    """Boolean mask of the garment in the product shot (coverage above one half)."""
    layers = garment_layers(
        spec, flat_skeleton(spec), product_frame(spec, size), sleeves_under=True
    )
    alpha = np.maximum.reduce([layers[name][0] for name in ("back", "sleeves", "body")])
    return alpha > 0.5
