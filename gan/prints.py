"""House prints: the one floral and the one stripe print that the pattern editor paints.

A synth garment's own print is random (motif, scale, colours, phase), so no editor can tell
which one a true edit would show, and an L1 loss learns a smeared average. The pattern edit
is therefore defined with fixed prints: the garment rendered solid, with the house print of
the target pattern laid over it in image coordinates (product shots place every garment of a
category at one fixed frame). `true_edit` is that definition; the training pairs
(gan.batches) and the evaluation's truth (numbpie.evaluation.edits) both use it, and the
pattern TagUnet blends towards `house_print`, the same print on the garment's ground colour.

Each print is an alpha plane (a function of the image size only, cached) and a print colour
chosen from the ground: light flowers/stripes on dark grounds, dark ones on light grounds.
Images here are tensors in [-1, 1], as the networks see them.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

__all__ = ["HOUSE_PRINTS", "PRINTS", "backdrop_colour", "ground_colour", "house_alpha", "house_print",
           "print_colour", "true_edit"]

HOUSE_PRINTS = "1"  # the design's version, written into editor files that blend towards it
PRINTS = ("floral", "stripes")

_TILES = 4  # floral tiles per image side: a tile is a quarter of the image
_RADIUS = 0.12  # flower radius, as a share of the tile side (0.03 of the image)
# Flowers of one tile: (x, y) in tile units, size factor, rotation; a loose half-drop layout.
_FLOWERS = ((0.14, 0.2, 1.0, 0.3), (0.62, 0.08, 0.9, 1.4), (0.4, 0.46, 1.1, 2.2),
            (0.88, 0.58, 0.95, 0.7), (0.18, 0.78, 1.05, 1.9), (0.66, 0.84, 0.9, 0.2))
_SUPERSAMPLE = 4
_STRIPE_PERIOD = 1 / 12  # of the image height: horizontal stripes
_STRIPE_RATIO = 0.4  # share of a period the stripe covers
_LUMA = (0.299, 0.587, 0.114)


def _blossom(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, angle: float) -> None:
    """Five round petals around an open centre."""
    for k in range(5):
        a = angle + k * 2 * math.pi / 5
        px, py, pr = cx + 0.52 * r * math.cos(a), cy + 0.52 * r * math.sin(a), 0.48 * r
        draw.ellipse([px - pr, py - pr, px + pr, py + pr], fill=255)
    hole = 0.2 * r
    draw.ellipse([cx - hole, cy - hole, cx + hole, cy + hole], fill=0)


@functools.lru_cache(maxsize=16)
def _floral_tile(side: int) -> np.ndarray:
    """The seamless floral tile, `side` pixels square: coverage in [0, 1]."""
    big = side * _SUPERSAMPLE
    image = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(image)
    for fx, fy, size, angle in _FLOWERS:
        r = _RADIUS * size * big
        for dx in (-big, 0, big):
            for dy in (-big, 0, big):
                _blossom(draw, fx * big + dx, fy * big + dy, r, angle)
    return np.asarray(image.resize((side, side), Image.BOX), np.float32) / 255.0


def _stripe_rows(height: int) -> np.ndarray:
    """Coverage of each pixel row by the stripes: the exact share of the row inside a stripe."""
    period, width = _STRIPE_PERIOD * height, _STRIPE_RATIO * _STRIPE_PERIOD * height
    edges = np.arange(height + 1, dtype=np.float64)
    covered = np.floor(edges / period) * width + np.minimum(edges % period, width)
    return np.diff(covered).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _alpha(pattern: str, height: int, width: int) -> torch.Tensor:
    if pattern == "floral":
        side = max(4, round(height / _TILES))
        tile = _floral_tile(side)
        reps = (-(-height // side), -(-width // side))
        plane = np.tile(tile, reps)[:height, :width]
    elif pattern == "stripes":
        plane = np.broadcast_to(_stripe_rows(height)[:, None], (height, width))
    else:
        raise ValueError(f"No house print for {pattern!r}; the house prints are: {', '.join(PRINTS)}.")
    return torch.from_numpy(np.ascontiguousarray(plane))


def house_alpha(pattern: str, height: int, width: int) -> torch.Tensor:
    """(H, W) coverage of the house print of `pattern` ('floral' or 'stripes'), in image coordinates."""
    return _alpha(pattern, height, width).clone()


def print_colour(ground: torch.Tensor) -> torch.Tensor:
    """(N, 3) print colour for (N, 3) ground colours in [-1, 1]: near-white on dark, near-black on light."""
    g = (ground.float() + 1) / 2
    luma = g @ g.new_tensor(_LUMA)
    light, dark = g + 0.8 * (1 - g), 0.2 * g
    return torch.where(luma[:, None] < 0.5, light, dark) * 2 - 1


def backdrop_colour(x: torch.Tensor) -> torch.Tensor:
    """(N, 3) median colour of the image's border: the backdrop behind the garment."""
    border = torch.cat([x[:, :, 0], x[:, :, -1], x[:, :, :, 0], x[:, :, :, -1]], dim=2)
    return border.median(dim=2).values


def ground_colour(x: torch.Tensor, levels: int = 8, radius: float = 0.25) -> torch.Tensor:
    """(N, 3) commonest colour of the garment (pixels unlike the backdrop): a print's ground fabric.

    The colour cube is cut into `levels`**3 bins; the median of the garment's pixels within
    `radius` of its fullest bin is the ground. A median over all pixels would not do: at the
    editors' 96 px, thin stripes blur into a band of mixed shades, and the per-channel median
    of ground, mixes and stripes is a colour the garment does not have. An image with no
    garment pixels gives its backdrop colour.
    """
    x = x.float()
    backdrop = backdrop_colour(x)
    pixels = x.flatten(2)  # (N, 3, P)
    garment = (pixels - backdrop[:, :, None]).abs().amax(1) > 0.1
    q = ((pixels + 1) / 2 * levels).long().clamp(0, levels - 1)
    bins = (q[:, 0] * levels + q[:, 1]) * levels + q[:, 2]
    counts = torch.zeros(len(x), levels**3).scatter_add_(1, bins, garment.float())
    centre = _masked_median(pixels, garment & (bins == counts.argmax(1, keepdim=True)))
    centre = _masked_median(pixels, garment & ((pixels - centre[:, :, None]).abs().amax(1) < radius))
    return torch.where(centre.isnan(), backdrop, centre)


def _masked_median(pixels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N, 3) per-channel median of the (N, 3, P) pixels where the (N, P) mask holds; NaN where it holds nowhere."""
    return torch.where(mask[:, None], pixels, torch.full_like(pixels, float("nan"))).nanmedian(dim=2).values


def house_print(ground: torch.Tensor, weights: torch.Tensor, patterns: Sequence[str], height: int,
                width: int) -> torch.Tensor:
    """(N, 3, H, W) ground colours with the house prints laid over them, print k weighted by weights[:, k].

    `patterns` names the columns of `weights` (a one-hot target label); 'solid' adds no print.
    """
    ground = ground.float()
    plane = ground[:, :, None, None].expand(-1, -1, height, width)
    colour = print_colour(ground)[:, :, None, None]
    for k, pattern in enumerate(patterns):
        if pattern in PRINTS:
            alpha = weights[:, k, None, None, None].float() * _alpha(pattern, height, width).to(ground.device)
            plane = plane + alpha * (colour - plane)
    return plane


def _tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB"), np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]


def true_edit(spec, tags: dict[str, str], size: int = 256, source: Image.Image | None = None) -> Image.Image:
    """The true product shot of synth `spec` after the edit `tags` (see the module's docstring).

    A shape edit, or a pattern edit to 'solid', re-renders the spec; an edit to floral or
    stripes renders it solid and lays the house print over the garment, in the print colour
    of the source's ground and with the solid render's shading. `source` is the product shot
    of `spec` at `size` if the caller already has it.
    """
    from numbpie.synth.product import product_shot, render_product

    edited = dataclasses.replace(spec, **tags)
    if edited == spec and source is not None:
        return source
    if edited.pattern not in PRINTS or edited.pattern == spec.pattern:
        return render_product(edited, size=size)
    solid, coverage = product_shot(dataclasses.replace(edited, pattern="solid"), size=size)
    ground = ground_colour(_tensor(source or render_product(spec, size=size)))
    colour = (print_colour(ground)[0, :, None, None] + 1) / 2
    solid_01 = (_tensor(solid) + 1) / 2
    shade_ground = (ground_colour(_tensor(solid))[0, :, None, None] + 1) / 2
    printed = (colour * solid_01 / shade_ground.clamp_min(0.02)).clamp(0, 1)  # the solid's shading, in print colour
    alpha = _alpha(edited.pattern, size, size) * torch.from_numpy(coverage.astype(np.float32))
    out = solid_01 + alpha * (printed - solid_01)
    return Image.fromarray((out[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), "RGB")
