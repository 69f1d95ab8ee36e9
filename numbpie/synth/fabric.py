"""Fabric: the garment's pattern (solid, stripes, florals) and its soft shading, as numpy colour fields."""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageDraw

from numbpie.synth.geometry import skirt_half_width
from numbpie.synth.raster import Frame
from numbpie.synth.spec import GarmentSpec, spec_rng

__all__ = ["body_shade", "fabric_field", "floral_tile", "sleeve_shade"]

_TILE_SS = 3
_FLOWERS_PER_TILE = 6
_CENTRES = ((250, 204, 70), (120, 70, 40), (250, 236, 180))


_GRAIN = 64


@functools.lru_cache(maxsize=4)
def _grain_texture(h: int, w: int) -> np.ndarray:
    """Fine weave noise, one fixed texture per canvas size (shifted per garment)."""
    return np.random.default_rng(1234).normal(0, 0.018, (h + _GRAIN, w + _GRAIN)).astype(np.float32)


def _grain(h: int, w: int, shift: int) -> np.ndarray:
    return _grain_texture(h, w)[shift : shift + h, _GRAIN - shift : _GRAIN - shift + w]


def _rgb(color) -> np.ndarray:
    return np.asarray(color, np.float32) / 255.0


def _ellipse(
    cx: float, cy: float, rx: float, ry: float, angle: float, n: int = 14
) -> list[tuple[float, float]]:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    ca, sa = math.cos(angle), math.sin(angle)
    x, y = rx * np.cos(t), ry * np.sin(t)
    return list(zip((cx + x * ca - y * sa).tolist(), (cy + x * sa + y * ca).tolist(), strict=True))


def _circle(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fill) -> None:
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)


def _leaves(draw, cx, cy, r, angle, color) -> None:
    for turn in (0.6, 2.9):
        a = angle + turn
        lx, ly = cx + 0.95 * r * math.cos(a), cy + 0.95 * r * math.sin(a)
        draw.polygon(_ellipse(lx, ly, 0.6 * r, 0.26 * r, a), fill=color)


def _flower(
    draw, motif: str, cx: float, cy: float, r: float, angle: float, petal, centre, leaf
) -> None:
    """One flower motif (petals around a centre) of radius r pixels."""
    petal = tuple(petal)
    dark = tuple(int(c * 0.72) for c in petal)
    if motif == "blossom":
        _leaves(draw, cx, cy, r, angle, leaf)
        for k in range(5):
            a = angle + k * 2 * math.pi / 5
            _circle(draw, cx + 0.5 * r * math.cos(a), cy + 0.5 * r * math.sin(a), 0.47 * r, petal)
        _circle(draw, cx, cy, 0.3 * r, centre)
    elif motif == "daisy":
        for k in range(11):
            a = angle + k * 2 * math.pi / 11
            draw.polygon(
                _ellipse(
                    cx + 0.58 * r * math.cos(a), cy + 0.58 * r * math.sin(a), 0.44 * r, 0.15 * r, a
                ),
                fill=petal,
            )
        _circle(draw, cx, cy, 0.3 * r, centre)
    elif motif == "rose":
        _leaves(draw, cx, cy, r, angle, leaf)
        _circle(draw, cx, cy, 0.85 * r, dark)
        _circle(draw, cx, cy, 0.68 * r, petal)
        _circle(draw, cx + 0.1 * r, cy - 0.05 * r, 0.42 * r, dark)
        _circle(draw, cx + 0.12 * r, cy - 0.08 * r, 0.27 * r, petal)
    else:  # ditsy: tiny four-petal flowers
        for k in range(4):
            a = angle + k * math.pi / 2
            _circle(draw, cx + 0.45 * r * math.cos(a), cy + 0.45 * r * math.sin(a), 0.42 * r, petal)
        _circle(draw, cx, cy, 0.25 * r, centre)


def floral_tile(spec: GarmentSpec, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """A seamless floral tile for `scale` pixels per unit: premultiplied RGB and alpha, both float32."""
    rng = spec_rng(spec.seed, 4)
    radius = spec.floral_scale * (0.6 if spec.floral_motif == "ditsy" else 1.0)
    side = math.sqrt(_FLOWERS_PER_TILE * math.pi * radius**2 / (spec.floral_density * 0.55))
    tile = max(6, int(round(side * scale)))
    big = tile * _TILE_SS
    r_px = radius * scale * _TILE_SS
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    centre = _CENTRES[int(rng.integers(len(_CENTRES)))]
    cols, rows = 3, 2
    for j in range(rows):
        for i in range(cols):
            fx = (i + 0.5 + 0.5 * (j % 2) + rng.uniform(-0.18, 0.18)) / cols
            fy = (j + 0.5 + rng.uniform(-0.18, 0.18)) / rows
            size = r_px * rng.uniform(0.8, 1.15)
            angle = rng.uniform(0, 2 * math.pi)
            petal = spec.flower_rgbs[(i + j) % len(spec.flower_rgbs)]
            for dx in (-big, 0, big):
                for dy in (-big, 0, big):
                    x, y = fx * big + dx, fy * big + dy
                    if -2 * size < x < big + 2 * size and -2 * size < y < big + 2 * size:
                        _flower(
                            draw, spec.floral_motif, x, y, size, angle, petal, centre, spec.leaf_rgb
                        )
    small = image.convert("RGBa").resize((tile, tile), Image.LANCZOS)
    array = np.asarray(small, np.float32) / 255.0
    return np.clip(array[..., :3], 0, 1), np.clip(array[..., 3], 0, 1)


def _stripes(spec: GarmentSpec, xs: np.ndarray, ys: np.ndarray, scale: float) -> np.ndarray:
    """Coverage of the accent stripes, anti-aliased to about one pixel."""
    a = math.radians(spec.stripe_angle)
    period = spec.stripe_width / spec.stripe_ratio
    u = (xs * math.sin(a) + ys * math.cos(a)) / period + spec.pattern_phase[0]
    f = u - np.floor(u)
    inside = np.minimum(f, spec.stripe_ratio - f)
    outside = -np.minimum(f - spec.stripe_ratio, 1 - f)
    signed = np.where(f < spec.stripe_ratio, inside, outside) * period * scale
    return np.clip(signed + 0.5, 0, 1)


def fabric_field(spec: GarmentSpec, frame: Frame) -> np.ndarray:
    """The garment's unshaded colour at every pixel of `frame` (pattern anchored to the body)."""
    xs, ys = frame.grid()
    w, h = frame.size
    base = _rgb(spec.rgb)
    grain = _grain(h, w, int(spec_rng(spec.seed, 3).integers(_GRAIN)))
    field = np.empty((h, w, 3), np.float32)
    field[:] = base
    if spec.pattern == "stripes":
        cover = _stripes(spec, xs, ys, frame.scale)[..., None]
        field = field * (1 - cover) + _rgb(spec.accent_rgb) * cover
    elif spec.pattern == "floral":
        premult, alpha = floral_tile(spec, frame.scale)
        t = alpha.shape[0]
        ix = (np.floor(xs[0] * frame.scale + spec.pattern_phase[0] * t).astype(np.int64)) % t
        iy = (np.floor(ys[:, 0] * frame.scale + spec.pattern_phase[1] * t).astype(np.int64)) % t
        a = alpha[iy[:, None], ix[None, :]][..., None]
        field = field * (1 - a) + premult[iy[:, None], ix[None, :]]
    return field * (1 + grain[..., None])


def _light(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Soft key light from the upper left."""
    return 1.06 - 0.14 * np.clip(ys - 0.16, 0, 1) - 0.25 * xs


def body_shade(spec: GarmentSpec, frame: Frame) -> np.ndarray:
    """Multiplicative shading of the garment body: rounded sides, skirt folds, a soft sheen."""
    xs, ys = frame.grid()
    rng = spec_rng(spec.seed, 5)
    half = skirt_half_width(spec, ys[:, :1]).astype(np.float32)
    across = np.clip(xs / half, -1.3, 1.3)
    shade = 1.0 - 0.3 * spec.shading * across**2
    folds = {"tight": 2.0, "normal": 3.0, "loose": 4.0}[spec.fit]
    amp = {"tight": 0.06, "normal": 0.12, "loose": 0.16}[spec.fit] * spec.shading
    start = 0.38 if spec.category == "dress" else 0.42
    depth = np.clip((ys - start) / 0.3, 0, 1)
    shade = shade + amp * depth * np.sin(math.pi * folds * across + rng.uniform(0, 6.28))
    shine = np.exp(-((xs + 0.035) ** 2 + (ys - 0.25) ** 2) / (2 * 0.045**2))
    return (shade * _light(xs, ys) + 0.16 * spec.sheen * shine)[..., None]


def _distance_to(axis: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Distance of every grid point to a polyline."""
    best = np.full(xs.shape, np.inf, np.float32)
    for p, q in zip(axis[:-1], axis[1:], strict=True):
        d = q - p
        t = np.clip(((xs - p[0]) * d[0] + (ys - p[1]) * d[1]) / float(d @ d), 0, 1)
        best = np.minimum(best, np.hypot(xs - p[0] - t * d[0], ys - p[1] - t * d[1]))
    return best


def sleeve_shade(
    spec: GarmentSpec, xs: np.ndarray, ys: np.ndarray, arms: list[np.ndarray]
) -> np.ndarray:
    """Multiplicative shading of both sleeves at unit points (xs, ys): darker towards their edges."""
    dist = np.minimum(_distance_to(arms[0], xs, ys), _distance_to(arms[1], xs, ys))
    width = 0.045 * (1.3 if spec.fit == "loose" else 1.0)
    shade = 0.97 - 0.32 * spec.shading * np.clip(dist / width, 0, 1.3) ** 2
    return (shade * _light(xs, ys))[..., None]
