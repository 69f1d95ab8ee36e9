"""Cluttered street and indoor backgrounds for street photos, drawn with PIL and numpy."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = ["backdrop"]

_REFERENCE = (640, 480)  # backgrounds are drawn at this size, then scaled to the photo
_WALLS = (
    (196, 186, 170),
    (170, 186, 196),
    (214, 204, 180),
    (150, 160, 150),
    (226, 222, 214),
    (190, 150, 130),
    (120, 130, 150),
)
_BRICK = ((150, 70, 50), (170, 96, 70), (130, 60, 46), (186, 150, 120))
_FACADES = (
    (180, 90, 70),
    (200, 190, 170),
    (150, 150, 156),
    (210, 180, 140),
    (110, 120, 130),
    (230, 220, 200),
)
_THINGS = (
    (200, 60, 50),
    (60, 110, 180),
    (230, 190, 60),
    (70, 140, 90),
    (140, 90, 160),
    (40, 40, 44),
    (240, 240, 236),
)


def _color(rng: np.random.Generator, options, jitter: float = 12.0) -> tuple[int, int, int]:
    base = np.asarray(options[int(rng.integers(len(options)))], float)
    return tuple(int(v) for v in np.clip(base + rng.normal(0, jitter, 3), 0, 255))


def _shade(color, factor: float) -> tuple[int, int, int]:
    return tuple(int(min(255, c * factor)) for c in color)


def _bricks(draw, rng, box, brick) -> None:
    x0, y0, x1, y1 = box
    height = int(rng.integers(10, 18))
    width = height * 2 + int(rng.integers(4, 12))
    for row, y in enumerate(range(y0, y1, height)):
        offset = (row % 2) * width // 2
        for x in range(x0 - offset, x1, width):
            draw.rectangle(
                [x + 1, y + 1, x + width - 2, y + height - 2],
                fill=_shade(brick, rng.uniform(0.85, 1.1)),
            )


def _wall(draw, rng, size, horizon) -> None:
    w, _ = size
    kind = rng.integers(4)
    wall = _color(rng, _WALLS)
    draw.rectangle([0, 0, w, horizon], fill=wall)
    if kind == 1:
        draw.rectangle([0, 0, w, horizon], fill=(200, 200, 196))
        _bricks(draw, rng, (0, 0, w, horizon), _color(rng, _BRICK, 4))
    elif kind == 2:
        step = int(rng.integers(14, 40))
        for x in range(0, w, step):
            draw.rectangle([x, 0, x + step // 3, horizon], fill=_shade(wall, 0.9))
    elif kind == 3:
        step = int(rng.integers(24, 60))
        for y in range(0, horizon, step):
            draw.line([0, y, w, y], fill=_shade(wall, 0.8), width=1)
        for x in range(0, w, step):
            draw.line([x, 0, x, horizon], fill=_shade(wall, 0.8), width=1)


def _floor(draw, rng, size, horizon) -> None:
    w, h = size
    floor = _color(
        rng, ((150, 110, 70), (120, 120, 124), (200, 190, 170), (90, 70, 50), (170, 160, 150))
    )
    draw.rectangle([0, horizon, w, h], fill=floor)
    vanish = w * rng.uniform(0.2, 0.8)
    for k in range(-12, 13):
        x = vanish + k * w * rng.uniform(0.12, 0.16)
        draw.line([vanish + (x - vanish) * 0.25, horizon, x, h], fill=_shade(floor, 0.8), width=1)
    if rng.random() < 0.5:
        y, gap = float(horizon), 4.0
        while y < h:
            draw.line([0, int(y), w, int(y)], fill=_shade(floor, 0.85), width=1)
            gap *= 1.35
            y += gap
    draw.rectangle([0, horizon - 6, w, horizon], fill=_shade(_color(rng, _WALLS), 0.9))


def _window(draw, rng, size, horizon) -> None:
    w, _ = size
    ww, wh = int(rng.integers(60, 180)), int(rng.integers(60, max(61, horizon - 30)))
    x0, y0 = int(rng.integers(0, w - ww)), int(rng.integers(5, max(6, horizon - wh - 10)))
    sky_top, sky_bottom = np.array([110, 160, 220]), np.array([220, 232, 240])
    for i in range(wh):
        draw.line(
            [x0, y0 + i, x0 + ww, y0 + i],
            fill=tuple(int(v) for v in sky_top + (sky_bottom - sky_top) * i / wh),
        )
    frame = _color(rng, ((240, 240, 236), (60, 50, 40), (120, 90, 60)))
    draw.rectangle([x0, y0, x0 + ww, y0 + wh], outline=frame, width=5)
    draw.line([x0 + ww // 2, y0, x0 + ww // 2, y0 + wh], fill=frame, width=4)
    draw.line([x0, y0 + wh // 2, x0 + ww, y0 + wh // 2], fill=frame, width=4)
    if rng.random() < 0.6:
        curtain = _color(rng, _THINGS, 20)
        for side in (x0 - 18, x0 + ww - 8):
            draw.rectangle([side, y0 - 8, side + 26, y0 + wh + 16], fill=curtain)
            draw.line(
                [side + 9, y0 - 8, side + 9, y0 + wh + 16], fill=_shade(curtain, 0.75), width=3
            )


def _plant(draw, rng, x, ground) -> None:
    pot = _color(rng, ((170, 90, 60), (230, 230, 224), (60, 60, 64)))
    size = int(rng.integers(16, 40))
    draw.polygon(
        [
            (x - size, ground - size * 1.6),
            (x + size, ground - size * 1.6),
            (x + size * 0.7, ground),
            (x - size * 0.7, ground),
        ],
        fill=pot,
    )
    for _ in range(14):
        a = rng.uniform(-2.6, -0.5)
        r = size * rng.uniform(1.2, 2.8)
        cx, cy = x + r * np.cos(a), ground - size * 1.6 + r * np.sin(a)
        draw.ellipse(
            [cx - size * 0.5, cy - size * 0.25, cx + size * 0.5, cy + size * 0.25],
            fill=_color(rng, ((50, 120, 60), (80, 150, 70)), 15),
        )


def _shelf(draw, rng, size, horizon) -> None:
    w, _ = size
    x0 = int(rng.integers(0, w - 100))
    width, top = int(rng.integers(80, 200)), int(rng.integers(20, max(21, horizon // 2)))
    wood = _color(rng, ((140, 100, 60), (230, 226, 218), (60, 50, 44)))
    for level in range(int(rng.integers(1, 4))):
        y = top + level * 50
        draw.rectangle([x0, y, x0 + width, y + 5], fill=wood)
        x = x0 + 4
        while x < x0 + width - 12:
            bw, bh = int(rng.integers(6, 16)), int(rng.integers(22, 44))
            draw.rectangle([x, y - bh, x + bw, y - 1], fill=_color(rng, _THINGS, 30))
            x += bw + int(rng.integers(1, 4))


def _picture(draw, rng, size, horizon) -> None:
    w, _ = size
    pw, ph = int(rng.integers(40, 110)), int(rng.integers(40, 90))
    x0, y0 = int(rng.integers(0, w - pw)), int(rng.integers(10, max(11, horizon - ph - 40)))
    draw.rectangle(
        [x0, y0, x0 + pw, y0 + ph], fill=_color(rng, _WALLS), outline=_color(rng, _THINGS), width=4
    )
    for _ in range(4):
        cx, cy, r = x0 + rng.uniform(8, pw - 8), y0 + rng.uniform(8, ph - 8), rng.uniform(4, 16)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_color(rng, _THINGS, 30))


def _indoor(draw, rng, size) -> int:
    w, h = size
    horizon = int(h * rng.uniform(0.5, 0.78))
    _wall(draw, rng, size, horizon)
    _floor(draw, rng, size, horizon)
    for _ in range(int(rng.integers(1, 3))):
        _window(draw, rng, size, horizon)
    for _ in range(int(rng.integers(0, 3))):
        (_shelf if rng.random() < 0.5 else _picture)(draw, rng, size, horizon)
    for _ in range(int(rng.integers(0, 3))):
        _plant(draw, rng, rng.uniform(0, w), horizon + rng.uniform(0, h - horizon))
    return horizon


def _building(draw, rng, x0, x1, top, horizon) -> None:
    facade = _color(rng, _FACADES)
    draw.rectangle([x0, top, x1, horizon], fill=facade)
    if rng.random() < 0.4:
        _bricks(draw, rng, (x0, top, x1, horizon), _shade(facade, 0.95))
    glass = _color(rng, ((60, 70, 90), (150, 180, 210), (40, 40, 46)))
    step_x, step_y = int(rng.integers(28, 50)), int(rng.integers(34, 56))
    for y in range(top + 12, horizon - 40, step_y):
        for x in range(x0 + 10, x1 - 24, step_x):
            draw.rectangle(
                [x, y, x + step_x // 2, y + step_y // 2],
                fill=glass,
                outline=_shade(facade, 0.7),
                width=2,
            )


def _car(draw, rng, x, ground) -> None:
    body = _color(rng, _THINGS, 20)
    length = rng.uniform(120, 220)
    height = length * 0.32
    draw.rounded_rectangle(
        [x, ground - height, x + length, ground - height * 0.2], radius=int(height * 0.3), fill=body
    )
    draw.rounded_rectangle(
        [x + length * 0.2, ground - height * 1.55, x + length * 0.75, ground - height * 0.9],
        radius=int(height * 0.25),
        fill=_shade(body, 0.9),
    )
    draw.rectangle(
        [x + length * 0.26, ground - height * 1.45, x + length * 0.69, ground - height],
        fill=(70, 90, 110),
    )
    for wx in (0.2, 0.8):
        cx, r = x + length * wx, height * 0.3
        draw.ellipse(
            [cx - r, ground - height * 0.2 - r, cx + r, ground - height * 0.2 + r],
            fill=(20, 20, 22),
        )


def _tree(draw, rng, x, ground) -> None:
    trunk_h = rng.uniform(60, 160)
    draw.rectangle([x - 5, ground - trunk_h, x + 5, ground], fill=(90, 64, 44))
    for _ in range(9):
        cx, cy = x + rng.normal(0, 24), ground - trunk_h + rng.normal(-10, 20)
        r = rng.uniform(18, 40)
        draw.ellipse(
            [cx - r, cy - r, cx + r, cy + r],
            fill=_color(rng, ((60, 120, 60), (90, 140, 70), (50, 100, 60)), 12),
        )


def _outdoor(draw, rng, size) -> int:
    w, h = size
    horizon = int(h * rng.uniform(0.5, 0.72))
    for y in range(horizon):
        t = y / max(1, horizon)
        draw.line([0, y, w, y], fill=(int(120 + 100 * t), int(170 + 60 * t), int(225 + 20 * t)))
    x = -int(rng.integers(0, 40))
    while x < w:
        width = int(rng.integers(90, 240))
        _building(draw, rng, x, x + width, int(rng.uniform(0.0, 0.45) * horizon), horizon)
        x += width
    draw.rectangle(
        [0, horizon, w, h], fill=_color(rng, ((150, 150, 150), (170, 160, 150), (120, 120, 124)))
    )
    draw.rectangle([0, horizon, w, horizon + int((h - horizon) * 0.25)], fill=(70, 72, 76))
    for k in range(-10, 11):
        draw.line(
            [w / 2 + k * 30, horizon + (h - horizon) * 0.25, w / 2 + k * 110, h],
            fill=(130, 130, 130),
            width=1,
        )
    for _ in range(int(rng.integers(0, 3))):
        _car(draw, rng, rng.uniform(-100, w), horizon + (h - horizon) * 0.22)
    for _ in range(int(rng.integers(0, 3))):
        _tree(draw, rng, rng.uniform(0, w), horizon + rng.uniform(0, 20))
    if rng.random() < 0.6:
        px = rng.uniform(0, w)
        draw.rectangle(
            [px - 3, rng.uniform(0, horizon * 0.5), px + 3, horizon + 30], fill=(50, 52, 56)
        )
    return horizon


def _texture(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Low-frequency brightness variation, so flat areas look like surfaces."""
    w, h = size
    coarse = rng.normal(1.0, 0.06, (h // 32 + 2, w // 32 + 2)).astype(np.float32)
    smooth = Image.fromarray(coarse, "F").resize((w, h), Image.BICUBIC)
    return np.asarray(smooth)[..., None]


def backdrop(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, int]:
    """A cluttered background as a float canvas, and the y of its floor line."""
    image = Image.new("RGB", _REFERENCE)
    draw = ImageDraw.Draw(image)
    horizon = (_indoor if rng.random() < 0.55 else _outdoor)(draw, rng, _REFERENCE)
    # down to half the output size and back up: a soft background, like a shallow depth of field
    image = image.resize(
        (max(8, size[0] // 2), max(8, size[1] // 2)), Image.BILINEAR, reducing_gap=2.0
    )
    radius = float(rng.uniform(0.0, 1.0))
    if radius > 0.25:
        image = image.filter(ImageFilter.GaussianBlur(radius))
    image = image.resize(size, Image.BICUBIC)
    canvas = np.asarray(image, np.float32) * (_texture(rng, size) / 255.0)
    return np.clip(canvas, 0, 1), int(horizon * size[1] / _REFERENCE[1])
