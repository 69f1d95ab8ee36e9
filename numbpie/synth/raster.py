"""Anti-aliased drawing: supersampled masks, fabric patterns, shading and compositing on numpy canvases."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = [
    "SS",
    "Frame",
    "blur",
    "composite",
    "darken",
    "extent",
    "hard_mask",
    "poly_mask",
    "stroke_mask",
    "to_image",
]

SS = 4  # supersampling factor for every mask


@dataclass(frozen=True)
class Frame:
    """Where body units land on a canvas: pixel = origin + unit * scale."""

    size: tuple[int, int]
    x0: float
    y0: float
    scale: float

    def px(self, points: np.ndarray, factor: float = 1.0) -> list[tuple[float, float]]:
        """Pixel coordinates of unit `points`, on a canvas `factor` times larger."""
        pts = np.asarray(points, float)
        xs = (self.x0 + pts[:, 0] * self.scale) * factor
        ys = (self.y0 + pts[:, 1] * self.scale) * factor
        return list(zip(xs.tolist(), ys.tolist(), strict=True))

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Body-unit coordinates of every pixel centre, as (x, y) arrays of shape (H, W)."""
        w, h = self.size
        xs = (np.arange(w, dtype=np.float32) + 0.5 - self.x0) / self.scale
        ys = (np.arange(h, dtype=np.float32) + 0.5 - self.y0) / self.scale
        return np.broadcast_to(xs[None, :], (h, w)), np.broadcast_to(ys[:, None], (h, w))


def _canvas(frame: Frame, factor: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("L", (frame.size[0] * factor, frame.size[1] * factor), 0)
    return image, ImageDraw.Draw(image)


def poly_mask(frame: Frame, fills: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """Coverage in [0, 1] of polygons painted in order with values 255 (add) or 0 (cut), supersampled."""
    image, draw = _canvas(frame, SS)
    for points, value in fills:
        draw.polygon(frame.px(points, SS), fill=value)
    return np.asarray(image.reduce(SS), np.float32) / 255.0


def stroke_mask(
    frame: Frame, lines: list[np.ndarray], width: float, closed: bool = False
) -> np.ndarray:
    """Coverage in [0, 1] of polylines `width` body units wide, supersampled."""
    image, draw = _canvas(frame, SS)
    pixels = max(1, int(round(width * frame.scale * SS)))
    for points in lines:
        xy = frame.px(points, SS)
        if closed:
            xy = xy + xy[:1]
        draw.line(xy, fill=255, width=pixels, joint="curve")
    return np.asarray(image.reduce(SS), np.float32) / 255.0


def hard_mask(frame: Frame, polygons: list[np.ndarray], width: float = 0.0) -> np.ndarray:
    """Boolean pixels touched by `polygons` (filled, plus an outline `width` units wide)."""
    image, draw = _canvas(frame, 1)
    pixels = int(math.ceil(2 * width * frame.scale)) + 3
    for points in polygons:
        xy = frame.px(points)
        draw.polygon(xy, fill=255)
        draw.line(xy + xy[:1], fill=255, width=pixels)
    return np.asarray(image) > 0


def extent(alpha: np.ndarray) -> tuple[slice, slice] | None:
    """The smallest row/column slices holding every non-zero coverage value, or None."""
    rows = np.flatnonzero(alpha.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(alpha.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def composite(canvas: np.ndarray, alpha: np.ndarray, color) -> np.ndarray:
    """Paint `color` (RGB in [0,1], or an HxWx3 field) over `canvas` with coverage `alpha`, in place."""
    where = extent(alpha)
    if where is None:
        return canvas
    color = np.asarray(color, np.float32)
    if color.ndim == 3:
        color = color[where]
    a = alpha[where][..., None]
    canvas[where] = canvas[where] * (1.0 - a) + a * color
    return canvas


def darken(canvas: np.ndarray, alpha: np.ndarray, factor: float) -> np.ndarray:
    """Scale `canvas` towards `factor` times itself where `alpha` covers it, in place."""
    where = extent(alpha)
    if where is not None:
        canvas[where] *= (1.0 - alpha[where] * (1.0 - factor))[..., None]
    return canvas


def blur(mask: np.ndarray, radius: float) -> np.ndarray:
    """A Gaussian-blurred copy of a [0,1] mask."""
    image = Image.fromarray(np.clip(mask * 255, 0, 255).astype(np.uint8))
    return np.asarray(image.filter(ImageFilter.GaussianBlur(radius)), np.float32) / 255.0


def to_image(canvas: np.ndarray) -> Image.Image:
    """An RGB PIL image from a float canvas in [0, 1]."""
    return Image.fromarray(np.clip(canvas * 255.0 + 0.5, 0, 255).astype(np.uint8), "RGB")
