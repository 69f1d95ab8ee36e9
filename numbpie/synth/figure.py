"""A stylised figure (head, hair, arms, legs) wearing the garment, painted as a premultiplied layer."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from numbpie.synth.garment import garment_layers
from numbpie.synth.geometry import Skeleton, pose_skeleton
from numbpie.synth.raster import Frame, composite, extent, poly_mask, stroke_mask
from numbpie.synth.spec import GarmentSpec, spec_rng

__all__ = ["Layer", "Look", "figure_layer", "look_for"]

SKIN = (
    (250, 222, 198),
    (238, 196, 164),
    (222, 170, 130),
    (196, 140, 100),
    (164, 110, 74),
    (128, 84, 56),
    (96, 62, 42),
    (232, 186, 150),
)
HAIR = (
    (24, 20, 18),
    (58, 38, 26),
    (96, 64, 40),
    (150, 108, 60),
    (214, 176, 110),
    (128, 54, 30),
    (176, 176, 176),
)
BOTTOMS = (
    (46, 70, 120),
    (30, 30, 34),
    (140, 122, 84),
    (90, 92, 98),
    (72, 96, 150),
    (40, 64, 50),
    (232, 230, 224),
)
SHOES = ((28, 26, 26), (120, 80, 50), (236, 236, 232), (160, 30, 40), (200, 170, 140))
HAIR_STYLES = ("short", "bob", "long", "bun")


@dataclass(frozen=True)
class Look:
    """Who wears the garment: skin, hair and the clothes that are not the garment."""

    skin: np.ndarray
    hair: np.ndarray
    hair_style: str
    bottoms: np.ndarray
    shoes: np.ndarray
    cropped: bool


@dataclass
class Layer:
    """A premultiplied RGB layer, its coverage, and the visible coverage of the garment in it."""

    color: np.ndarray
    alpha: np.ndarray
    garment: np.ndarray

    def paint(self, alpha: np.ndarray, color, is_garment: bool = False) -> None:
        """Paint `color` with coverage `alpha` over the layer."""
        where = extent(alpha)
        if where is None:
            return
        alpha = alpha[where]
        color = np.asarray(color, np.float32)
        composite(self.color[where], alpha, color[where] if color.ndim == 3 else color)
        self.alpha[where] = self.alpha[where] * (1 - alpha) + alpha
        self.garment[where] = self.garment[where] * (1 - alpha) + (alpha if is_garment else 0.0)


def _rgb(color) -> np.ndarray:
    return np.asarray(color, np.float32) / 255.0


def look_for(spec: GarmentSpec) -> Look:
    """The wearer drawn from `spec.seed` (never from the garment's attributes)."""
    rng = spec_rng(spec.seed, 6)
    pick = lambda options: options[int(rng.integers(len(options)))]  # noqa: E731
    return Look(
        _rgb(pick(SKIN)),
        _rgb(pick(HAIR)),
        pick(HAIR_STYLES),
        _rgb(pick(BOTTOMS)),
        _rgb(pick(SHOES)),
        rng.random() < 0.3,
    )


def _ellipse(
    cx: float, cy: float, rx: float, ry: float, angle: float = 0.0, n: int = 20
) -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    ca, sa = math.cos(angle), math.sin(angle)
    return np.column_stack([cx + x * ca - y * sa, cy + x * sa + y * ca])


def limb(axis: np.ndarray, widths: tuple[float, ...]) -> list[np.ndarray]:
    """Polygons of a tapered limb along `axis` with half-widths per joint, with round ends."""
    axis = np.asarray(axis, float)
    seg = np.diff(axis, axis=0)
    seg /= np.linalg.norm(seg, axis=1, keepdims=True)
    normals = np.column_stack([seg[:, 1], -seg[:, 0]])
    joint = np.vstack([normals[:1], (normals[:-1] + normals[1:]) / 2, normals[-1:]])
    joint /= np.linalg.norm(joint, axis=1, keepdims=True)
    w = np.asarray(widths, float)[:, None]
    body = np.vstack([axis + joint * w, (axis - joint * w)[::-1]])
    caps = [_ellipse(x, y, r, r, n=12) for (x, y), r in zip(axis, widths, strict=True)]
    return [body, *caps]


def _hair(style: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Hair polygons behind the body and in front of the face."""
    arc = np.linspace(math.pi * 1.02, math.pi * 1.98, 16)
    cap = np.column_stack([0.049 * np.cos(arc), 0.064 + 0.058 * np.sin(arc)])
    fringe = np.array(
        [(0.047, 0.07), (0.036, 0.046), (0.0, 0.036), (-0.036, 0.046), (-0.047, 0.07)]
    )
    front = [np.vstack([cap, fringe])]
    if style == "long":
        return [np.array([(-0.05, 0.05), (0.05, 0.05), (0.066, 0.29), (-0.066, 0.29)])], front
    if style == "bob":
        return [np.array([(-0.054, 0.05), (0.054, 0.05), (0.058, 0.13), (-0.058, 0.13)])], front
    if style == "bun":
        return [], [*front, _ellipse(0.0, 0.0, 0.026, 0.024)]
    return [], front


def _torso() -> np.ndarray:
    right = np.array(
        [
            (0.026, 0.15),
            (0.09, 0.182),
            (0.104, 0.2),
            (0.09, 0.26),
            (0.072, 0.37),
            (0.09, 0.47),
            (0.09, 0.53),
        ]
    )
    return np.vstack([right, (right * [-1, 1])[::-1]])


def _legs(skeleton: Skeleton) -> list[np.ndarray]:
    return [p for leg in skeleton.legs for p in limb(leg, (0.038, 0.026, 0.018))]


def _arms(skeleton: Skeleton) -> list[np.ndarray]:
    polygons = []
    for arm in skeleton.arms:
        body, _, elbow, wrist = limb(arm, (0.024, 0.019, 0.015))
        polygons += [body, elbow, wrist]  # no cap at the shoulder: it would poke above the seam
        direction = arm[2] - arm[1]
        direction /= np.linalg.norm(direction)
        hand = arm[2] + direction * 0.026
        polygons.append(
            _ellipse(
                hand[0], hand[1], 0.015, 0.026, math.atan2(direction[1], direction[0]) - math.pi / 2
            )
        )
    return polygons


def _shoes(skeleton: Skeleton) -> list[np.ndarray]:
    return [
        _ellipse(leg[2][0] + np.sign(leg[2][0]) * 0.008, leg[2][1] + 0.018, 0.027, 0.014)
        for leg in skeleton.legs
    ]


def _trousers(skeleton: Skeleton, cropped: bool) -> list[np.ndarray]:
    pelvis = np.array([(-0.1, 0.43), (0.1, 0.43), (0.102, 0.53), (0.0, 0.57), (-0.102, 0.53)])
    shapes = [pelvis]
    for hip, knee, ankle in skeleton.legs:
        end = knee + (ankle - knee) * (0.7 if cropped else 0.98)
        shapes += limb(np.stack([hip, knee, end]), (0.048, 0.033, 0.027))[:2]
    return shapes


def _skin_part(
    layer: Layer,
    frame: Frame,
    polygons: list[np.ndarray],
    color: np.ndarray,
    outline: list[np.ndarray],
) -> None:
    alpha = poly_mask(frame, [(p, 255) for p in polygons])
    layer.paint(alpha, color)
    if outline:
        layer.paint(stroke_mask(frame, outline, 0.004, closed=True) * alpha, color * 0.78)


def figure_layer(spec: GarmentSpec, frame: Frame, skeleton: Skeleton | None = None) -> Layer:
    """The figure wearing `spec`, in a posed stance, as a premultiplied layer on `frame`."""
    skeleton = skeleton or pose_skeleton(spec)
    look = look_for(spec)
    w, h = frame.size
    layer = Layer(
        np.zeros((h, w, 3), np.float32), np.zeros((h, w), np.float32), np.zeros((h, w), np.float32)
    )
    back_hair, front_hair = _hair(look.hair_style)
    if back_hair:
        _skin_part(layer, frame, back_hair, look.hair * 0.85, [])
    legs = _legs(skeleton)
    _skin_part(layer, frame, legs, look.skin * 0.96, legs[:1] + legs[4:5])
    _skin_part(layer, frame, _shoes(skeleton), look.shoes, [])
    neck = np.array([(-0.019, 0.1), (0.019, 0.1), (0.024, 0.17), (-0.024, 0.17)])
    _skin_part(layer, frame, [_torso(), neck], look.skin, [])
    if spec.category == "top":
        _skin_part(layer, frame, _trousers(skeleton, look.cropped), look.bottoms, [])
    arms = _arms(skeleton)  # behind the garment body, so the shoulders stay covered
    _skin_part(layer, frame, arms, look.skin, [arms[0], arms[4]])
    garment = garment_layers(spec, skeleton, frame, sleeves_under=False)
    layer.paint(*garment["body"], is_garment=True)
    layer.paint(*garment["sleeves"], is_garment=True)
    _skin_part(layer, frame, [_ellipse(0.0, 0.066, 0.043, 0.056)], look.skin, [])
    eyes = [_ellipse(x, 0.072, 0.0055, 0.0042) for x in (-0.017, 0.017)]
    _skin_part(layer, frame, eyes, np.array([0.12, 0.09, 0.08], np.float32), [])
    _skin_part(layer, frame, front_hair, look.hair, [])
    return layer
