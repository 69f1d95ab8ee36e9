"""Street photos: figures wearing garments in cluttered scenes, with ground-truth garment boxes."""

from __future__ import annotations

import functools
import io
import math

import numpy as np
from PIL import Image, ImageFilter

from numbpie.synth.backdrop import backdrop
from numbpie.synth.figure import figure_layer
from numbpie.synth.raster import Frame
from numbpie.synth.spec import GarmentSpec, spec_rng

__all__ = ["BOX_THRESHOLD", "camera", "render_street", "street_scene"]

BOX_THRESHOLD = 0.1  # garment coverage above which a pixel counts towards its box


def _coefficients(src: np.ndarray, dst: np.ndarray) -> list[float]:
    """PIL perspective coefficients mapping output points `dst` back to input points `src`."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return np.linalg.solve(np.array(rows, float), np.array(rhs, float)).tolist()


def _warp(planes: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Rotate planes slightly and tilt them in perspective, all by the same random warp."""
    h, w = planes[0].shape[:2]
    src = np.array([(0, 0), (w, 0), (w, h), (0, h)], float)
    angle = math.radians(rng.uniform(-6, 6))
    centre = np.array([w / 2, h / 2])
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    dst = (src - centre) @ rot.T + centre + rng.normal(0, 0.025, (4, 2)) * [w, h]
    dst -= dst.min(axis=0)
    out = tuple(int(math.ceil(v)) for v in dst.max(axis=0))
    coeffs = _coefficients(src, dst)
    warped = []
    for plane in planes:
        image = Image.fromarray(np.clip(plane * 255 + 0.5, 0, 255).astype(np.uint8))
        warped.append(
            np.asarray(image.transform(out, Image.PERSPECTIVE, coeffs, Image.BILINEAR), np.float32)
            / 255.0
        )
    return warped


def _figure(spec: GarmentSpec, height: float, rng: np.random.Generator) -> list[np.ndarray]:
    """A warped figure of about `height` pixels: premultiplied colour, coverage, garment coverage."""
    w, h = int(height * 0.62) + 4, int(height * 1.1) + 4
    frame = Frame((w, h), w / 2, 0.06 * height + 2, height)
    layer = figure_layer(spec, frame)
    color, alpha, garment = _warp([layer.color, layer.alpha, layer.garment], rng)
    return [color, alpha, garment]


def _place(
    alpha: np.ndarray, slot: tuple[float, float], size: tuple[int, int], horizon: int, rng
) -> tuple[int, int]:
    """Top-left corner for a figure layer: inside its slot, feet on the floor, head in the frame."""
    ys, xs = np.nonzero(alpha > 0.05)
    top, bottom, left, right = ys.min(), ys.max(), xs.min(), xs.max()
    w, h = size
    tall = bottom - top
    low = max(tall + 2, horizon + 0.15 * (h - horizon))
    feet = rng.uniform(low, h + 0.02 * tall) if low < h + 0.02 * tall else h
    x_lo, x_hi = slot[0] - left, slot[1] - right
    x = rng.uniform(x_lo, x_hi) if x_lo < x_hi else (slot[0] + slot[1] - left - right) / 2
    return int(round(x)), int(round(feet - bottom))


def _paste(canvas: np.ndarray, plane: np.ndarray, x: int, y: int) -> tuple[np.ndarray, tuple]:
    """The part of `plane` that lands on `canvas` at (x, y), and the canvas slice it covers."""
    h, w = canvas.shape[:2]
    ph, pw = plane.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + pw), min(h, y + ph)
    return plane[y0 - y : y1 - y, x0 - x : x1 - x], (slice(y0, y1), slice(x0, x1))


def _shadow(canvas: np.ndarray, alpha: np.ndarray, x: int, y: int) -> None:
    """A soft contact shadow under the figure's feet."""
    ys, xs = np.nonzero(alpha > 0.05)
    feet_y, cx, width = (
        y + ys.max(),
        x + (xs.min() + xs.max()) / 2,
        max((xs.max() - xs.min()) * 0.45, 2.0),
    )
    h, w = canvas.shape[:2]
    y0, y1 = int(max(0, feet_y - width)), int(min(h, feet_y + width))
    x0, x1 = int(max(0, cx - 2 * width)), int(min(w, cx + 2 * width))
    if y0 >= y1 or x0 >= x1:
        return
    gy = (np.arange(y0, y1, dtype=np.float32)[:, None] - feet_y) / (width * 0.18)
    gx = (np.arange(x0, x1, dtype=np.float32)[None, :] - cx) / width
    canvas[y0:y1, x0:x1] *= (1 - 0.4 * np.exp(-(gx**2 + gy**2) * 1.5))[..., None]


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask > BOX_THRESHOLD)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@functools.lru_cache(maxsize=4)
def _noise_texture(h: int, w: int) -> np.ndarray:
    return np.random.default_rng(4321).standard_normal((h + 64, w + 64, 3), dtype=np.float32)


def _noise(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Unit Gaussian sensor noise: a window of one fixed texture at a random offset."""
    dy, dx = rng.integers(0, 64, 2)
    return _noise_texture(h, w)[dy : dy + h, dx : dx + w]


def camera(canvas: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Lighting, colour cast, blur, sensor noise and JPEG artefacts of a cheap phone camera.

    `canvas` is float RGB in 0..1, (h, w, 3); the labels of what it shows do not change.
    """
    h, w = canvas.shape[:2]
    cast = rng.uniform(0.86, 1.12, 3).astype(np.float32)
    gain = rng.uniform(0.75, 1.15)
    direction = rng.uniform(0, 2 * math.pi)
    gx = (np.arange(w, dtype=np.float32) / w - 0.5)[None, :]
    gy = (np.arange(h, dtype=np.float32) / h - 0.5)[:, None]
    ramp = 1 + 0.15 * (gx * math.cos(direction) + gy * math.sin(direction))
    vignette = 1 - 0.25 * (gx**2 + gy**2)
    light = (ramp * vignette * (gain * 255.0))[..., None] * cast
    image = Image.fromarray(np.clip(canvas * light + 0.5, 0, 255).astype(np.uint8))
    radius = float(rng.uniform(0.0, 1.2))
    if radius > 0.3:
        image = image.filter(ImageFilter.GaussianBlur(radius))
    noisy = np.asarray(image, np.float32) + _noise(h, w, rng) * rng.uniform(1, 7)
    image = Image.fromarray(np.clip(noisy + 0.5, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=int(rng.integers(45, 92)))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def street_scene(
    spec: GarmentSpec, seed: int, size=(640, 480), others=()
) -> tuple[Image.Image, list, list]:
    """A street photo, the garment boxes and the full-frame garment coverage of each figure."""
    rng = spec_rng(seed, 8)
    w, h = size
    canvas, horizon = backdrop(rng, size)
    specs = [spec, *others]
    order = rng.permutation(len(specs))
    width = w / len(specs)
    low, high = (0.2, 0.9) if len(specs) == 1 else (0.3, 0.75)
    boxes, masks = [None] * len(specs), [None] * len(specs)
    for slot, index in enumerate(order):
        color, alpha, garment = _figure(specs[index], rng.uniform(low, high) * h, rng)
        x, y = _place(alpha, (slot * width, (slot + 1) * width), size, horizon, rng)
        _shadow(canvas, alpha, x, y)
        part, where = _paste(canvas, alpha, x, y)
        canvas[where] = canvas[where] * (1 - part[..., None]) + _paste(canvas, color, x, y)[0]
        full = np.zeros((h, w), np.float32)
        full[where] = _paste(canvas, garment, x, y)[0]
        masks[index] = full
        boxes[index] = _box(full)
    return camera(canvas, rng), boxes, masks


def render_street(
    spec: GarmentSpec, seed: int, size=(640, 480), others=()
) -> tuple[Image.Image, list]:
    """A street photo of `spec` (and `others`) in a cluttered scene; boxes[i] is garment i's (x0, y0, x1, y1)."""
    image, boxes, _ = street_scene(spec, seed, size, others)
    return image, boxes
