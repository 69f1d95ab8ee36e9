"""The garment as paint layers (back panel, sleeves, body) and its per-attribute region masks."""

from __future__ import annotations

import numpy as np

from numbpie.synth.fabric import body_shade, fabric_field, sleeve_shade
from numbpie.synth.geometry import SHORT_HEM_Y, Skeleton, garment_shapes
from numbpie.synth.raster import Frame, blur, darken, extent, hard_mask, poly_mask, stroke_mask
from numbpie.synth.spec import GarmentSpec

__all__ = ["TRIM", "garment_layers", "garment_regions"]

TRIM = 0.009  # width of neck, cuff and hem bands in body units
_SEAM = 0.0035


def _body_alpha(spec: GarmentSpec, shapes: dict, frame: Frame) -> np.ndarray:
    fills = [(shapes["body"], 255), (shapes["neck_cut"], 0)]
    if spec.sleeve_length == "sleeveless":
        fills += [(hole, 0) for hole in shapes["armholes"]]
    return poly_mask(frame, fills)


def _trimmed(
    color: np.ndarray,
    frame: Frame,
    lines: list[np.ndarray],
    width: float,
    factor: float,
    closed: bool = False,
) -> np.ndarray:
    """`color` with bands along `lines`, `factor` as bright (a ribbed trim or seam)."""
    if not lines:
        return color
    return darken(color, stroke_mask(frame, lines, width, closed), factor)


def garment_layers(
    spec: GarmentSpec, skeleton: Skeleton, frame: Frame, sleeves_under: bool
) -> dict:
    """Paint layers {name: (alpha, colour field)}: 'back' (inside of the neck), 'sleeves', 'body'."""
    shapes = garment_shapes(spec, skeleton)
    fabric = fabric_field(spec, frame)
    body_alpha = _body_alpha(spec, shapes, frame)
    body = fabric * body_shade(spec, frame)
    body = _trimmed(body, frame, [shapes["body"]], _SEAM, 0.72)
    body = _trimmed(body, frame, [shapes["neck_curve"]], 2 * TRIM, 0.82)
    if spec.sleeve_length == "sleeveless":
        body = _trimmed(body, frame, shapes["armholes"], 2 * TRIM, 0.82)
    if spec.category == "top":
        body = _trimmed(body, frame, [shapes["hem"]], 2.4 * TRIM, 0.86)
    layers = {"back": (poly_mask(frame, [(shapes["back"], 255)]), fabric * 0.5)}
    sleeve_alpha = poly_mask(frame, [(s, 255) for s in shapes["sleeves"]])
    sleeves = fabric.copy()
    where = extent(sleeve_alpha)
    if where is not None:
        xs, ys = frame.grid()
        sleeves[where] *= sleeve_shade(spec, xs[where], ys[where], shapes["arms"])
        if sleeves_under:  # the body casts a soft shadow onto the sleeves beneath it
            sleeves[where] *= (1 - 0.35 * blur(body_alpha, 0.012 * frame.scale)[where])[..., None]
    sleeves = _trimmed(sleeves, frame, shapes["sleeves"], _SEAM, 0.72, closed=True)
    if spec.sleeve_length == "long":
        sleeves = _trimmed(sleeves, frame, shapes["cuffs"], 2.4 * TRIM, 0.84)
    layers["sleeves"] = (sleeve_alpha, sleeves)
    layers["body"] = (body_alpha, body)
    return layers


def garment_regions(spec: GarmentSpec, skeleton: Skeleton, frame: Frame) -> dict[str, np.ndarray]:
    """Boolean masks of the pixels each attribute may change: one per attribute name, plus 'garment'."""
    shapes = garment_shapes(spec, skeleton)
    garment = hard_mask(frame, [shapes["body"], *shapes["sleeves"]])
    _, ys = frame.grid()
    sleeves = hard_mask(frame, [*shapes["sleeves"], *shapes["armholes"]], TRIM)
    if spec.category == "dress":
        length = garment & (ys >= SHORT_HEM_Y - 0.01)
    else:
        length = np.zeros_like(garment)
    return {
        "garment": garment,
        "sleeve_length": sleeves,
        "fit": garment,
        "neckline": hard_mask(frame, [shapes["neck_cut"]], TRIM),
        "length": length,
        "pattern": garment,
        "color": garment,
    }
