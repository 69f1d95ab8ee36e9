"""Garment and figure geometry in body units (figure height 1, x centred on the body, y down)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from numbpie.synth.spec import GarmentSpec, spec_rng

__all__ = [
    "NECK_Y",
    "SHORT_HEM_Y",
    "Skeleton",
    "flat_skeleton",
    "garment_shapes",
    "pose_skeleton",
    "skirt_half_width",
    "smooth",
]

NECK_Y = 0.163
SHORT_HEM_Y = 0.585
_HEM_Y = {"short": SHORT_HEM_Y, "knee": 0.715, "long": 0.915}
_SLEEVE_END = {"short": 0.11, "3/4": 0.215, "long": 0.318}
_UPPER_ARM, _FOREARM = 0.165, 0.15
_FLAT_ANGLE = 26.0  # degrees from vertical of the sleeves in product shots
# half-widths per fit: armpit, waist, hem (tops) / hip (dresses), skirt flare (dresses)
_TOP_FIT = {
    "tight": (0.098, 0.076, 0.09),
    "normal": (0.112, 0.102, 0.11),
    "loose": (0.142, 0.146, 0.156),
}
_DRESS_FIT = {
    "tight": (0.098, 0.073, 0.094, 0.07),
    "normal": (0.11, 0.09, 0.11, 0.26),
    "loose": (0.136, 0.118, 0.135, 0.5),
}
_SLEEVE_FIT = {"tight": 0.8, "normal": 1.0, "loose": 1.45}
_NECK = {"round": (0.041, 0.21), "v": (0.04, 0.29), "wide": (0.082, 0.208)}


@dataclass(frozen=True)
class Skeleton:
    """Joint positions: arms as (shoulder, elbow, wrist) per side, legs as (hip, knee, ankle)."""

    arms: tuple[np.ndarray, np.ndarray]
    legs: tuple[np.ndarray, np.ndarray]


def _arm(side: int, spread_deg: float, bend_deg: float, shoulder: float) -> np.ndarray:
    joint = np.array([side * 0.104 * shoulder, 0.19])
    upper = math.radians(spread_deg)
    lower = math.radians(spread_deg + bend_deg)
    elbow = joint + _UPPER_ARM * np.array([side * math.sin(upper), math.cos(upper)])
    wrist = elbow + _FOREARM * np.array([side * math.sin(lower), math.cos(lower)])
    return np.stack([joint, elbow, wrist])


def _leg(side: int, ankle_x: float) -> np.ndarray:
    hip = np.array([side * 0.046, 0.49])
    ankle = np.array([side * ankle_x, 0.945])
    knee = hip + 0.52 * (ankle - hip) + np.array([side * 0.004, 0.0])
    return np.stack([hip, knee, ankle])


def flat_skeleton(spec: GarmentSpec) -> Skeleton:
    """The pose of a garment laid flat for a product shot: straight sleeves slanting out.

    The sleeve axis is set so the sleeve's outer edge starts at the shoulder seam, without a bump.
    """
    angle = math.radians(_FLAT_ANGLE)
    reach = 0.9 * 0.035 * _SLEEVE_FIT[spec.fit]
    arms = []
    for side in (-1, 1):
        shoulder = np.array([side * 0.118 * spec.shoulder, NECK_Y + 0.024])
        joint = shoulder - reach * np.array([side * math.cos(angle), -math.sin(angle)])
        arm = _arm(side, _FLAT_ANGLE, 0, spec.shoulder)
        arms.append(arm - arm[0] + joint)
    return Skeleton(tuple(arms), (_leg(-1, 0.05), _leg(1, 0.05)))


def pose_skeleton(spec: GarmentSpec) -> Skeleton:
    """A standing pose drawn from `spec.seed`: small arm, elbow and leg angle changes."""
    rng = spec_rng(spec.seed, 1)
    spreads = rng.uniform(8, 24, 2)
    bends = rng.uniform(-6, 22, 2)
    arms = tuple(
        _arm(side, s, b, spec.shoulder) for side, s, b in zip((-1, 1), spreads, bends, strict=True)
    )
    ankles = rng.uniform(0.035, 0.085, 2)
    legs = tuple(_leg(side, a) for side, a in zip((-1, 1), ankles, strict=True))
    return Skeleton(arms, legs)


def smooth(points: np.ndarray, samples: int = 6) -> np.ndarray:
    """A Catmull-Rom curve through `points` (open), `samples` points per segment."""
    pts = np.asarray(points, float)
    padded = np.vstack([2 * pts[0] - pts[1], pts, 2 * pts[-1] - pts[-2]])
    t = np.linspace(0, 1, samples, endpoint=False)[:, None]
    out = []
    for i in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[i - 1 : i + 3]
        out.append(
            0.5
            * (
                (2 * p1)
                + (-p0 + p2) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
        )
    out.append(pts[-1:])
    return np.vstack(out)


def _shoulder_y(x: np.ndarray | float, spec: GarmentSpec) -> np.ndarray:
    """The garment's top edge (the shoulder seam) at horizontal position x."""
    neck = 0.035 * spec.shoulder
    reach = 0.118 * spec.shoulder
    return NECK_Y + 0.024 * np.clip((np.abs(x) - neck) / (reach - neck), 0, None)


def _profile(spec: GarmentSpec) -> tuple[np.ndarray, np.ndarray]:
    """Half-width of the garment body against y (side seam), ending at the hem."""
    k, t = spec.shoulder, spec.torso
    if spec.category == "top":
        armpit, waist, hem = _TOP_FIT[spec.fit]
        ys = np.array([0.265, 0.37 * t, 0.505 * t])
        return ys, np.array([armpit, waist, hem]) * k
    armpit, waist, hip, flare = _DRESS_FIT[spec.fit]
    hem_y = _HEM_Y[spec.length]
    ys = np.array([0.265, 0.36 * t, 0.47 * t, hem_y])
    return ys, np.array([armpit * k, waist * k, hip * k, hip * k + flare * (hem_y - 0.47 * t)])


def skirt_half_width(spec: GarmentSpec, y: np.ndarray) -> np.ndarray:
    """Half-width of the body at rows y, extended past the hem so it never depends on length."""
    ys, ws = _profile(spec)
    slope = (ws[-1] - ws[-2]) / (ys[-1] - ys[-2])
    return np.where(y > ys[-1], ws[-1] + slope * (y - ys[-1]), np.interp(y, ys, ws))


def _body(spec: GarmentSpec) -> tuple[np.ndarray, np.ndarray]:
    """The closed body outline (neck, shoulders, side seams, hem) and the hem line."""
    ys, ws = _profile(spec)
    k = spec.shoulder
    top = np.array([(0.035 * k, NECK_Y), (0.118 * k, NECK_Y + 0.024)])
    hem_w, hem_y = ws[-1], ys[-1]
    if spec.category == "dress":
        # a curve down to just past the hip, then straight knots at fixed rows: only the hem
        # rows differ between lengths, so a length edit never bends the waist
        guide = ys[2] + 0.05
        guide_w = float(skirt_half_width(spec, np.array(guide)))
        knots = np.column_stack([[*ws[:3], guide_w], [*ys[:3], guide]])
        rows = np.arange(SHORT_HEM_Y - 0.01, hem_y, 0.03)
        rungs = np.column_stack([skirt_half_width(spec, rows), rows])
        side = np.vstack([smooth(knots, 8), rungs, [(hem_w, hem_y)]])
    else:
        side = smooth(np.column_stack([ws, ys]), 8)
    sag = 0.014 if spec.category == "dress" else 0.004
    xs = np.linspace(hem_w, 0, 9)[1:]
    hem = np.column_stack([xs, hem_y + sag * (1 - (xs / hem_w) ** 2)])
    right = np.vstack([top, side, hem])
    outline = np.vstack([right, (right * [-1, 1])[::-1]])
    hem_line = np.vstack([[(-hem_w, hem_y)], hem * [-1, 1], hem[::-1], [(hem_w, hem_y)]])
    return outline, hem_line


def _neck(spec: GarmentSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Front neckline curve, the cut polygon above it, and the back panel seen through it."""
    half, depth = _NECK[spec.neckline]
    half = half * spec.shoulder
    top = float(_shoulder_y(half, spec))
    phi = np.linspace(0, math.pi / 2, 12)
    if spec.neckline == "v":
        s = np.linspace(0, 1, 12)
        right = np.column_stack([half * (1 - s), top + (depth - top) * (s + 0.12 * s * (1 - s))])
    else:
        power = 0.6 if spec.neckline == "wide" else 1.0
        right = np.column_stack([half * np.cos(phi), top + (depth - top) * np.sin(phi) ** power])
    curve = np.vstack([right * [-1, 1], right[::-1][1:]])
    cut = np.vstack([curve, [(half, top - 0.06), (-half, top - 0.06)]])
    xs = np.linspace(half, -half, 10)
    back = np.column_stack([xs, _shoulder_y(xs, spec) + 0.02 * (1 - (xs / half) ** 2)])
    return curve, cut, np.vstack([curve, back])


def _armhole(spec: GarmentSpec, side: int, armpit_w: float) -> np.ndarray:
    """The region cut away at one shoulder when the garment is sleeveless."""
    k = spec.shoulder
    strap = 0.098 * k
    start = (strap, float(_shoulder_y(strap, spec)))
    drop = (strap - 0.004 * k, 0.2)
    bend = (min(0.084 * k, armpit_w - 0.022), 0.238)
    curve = smooth(np.array([start, drop, bend, (armpit_w + 0.002, 0.262)]), 6)
    outside = np.array([(armpit_w + 0.1, 0.262), (0.25, NECK_Y - 0.05), (strap, NECK_Y - 0.05)])
    return np.vstack([curve, outside]) * [side, 1]


def _along(axis: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points and unit normals at arc lengths t along a polyline (extrapolated before its start)."""
    seg = np.diff(axis, axis=0)
    lengths = np.linalg.norm(seg, axis=1)
    dirs = seg / lengths[:, None]
    ends = np.concatenate([[0.0], np.cumsum(lengths)])
    index = np.clip(np.searchsorted(ends, t, side="right") - 1, 0, len(seg) - 1)
    points = axis[index] + dirs[index] * (t - ends[index])[:, None]
    normals = np.column_stack([dirs[index, 1], -dirs[index, 0]])
    return points, normals


def _sleeve(
    spec: GarmentSpec, arm: np.ndarray, side: int, armpit: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One sleeve polygon and its end (cuff) line, hanging from the shoulder seam along the arm."""
    end = _SLEEVE_END[spec.sleeve_length]
    t = np.concatenate([[0.0, 0.015, 0.03], np.linspace(0.045, end, 10)])
    width = (0.035 + (0.023 - 0.035) * t / 0.318) * _SLEEVE_FIT[spec.fit]
    if spec.fit == "loose":
        width = width + 0.018 * (t / 0.318) ** 1.5
    points, normals = _along(arm, t)
    normals = normals * side
    shoulder = np.array([side * 0.118 * spec.shoulder, NECK_Y + 0.024])
    outer = points + normals * width[:, None]
    blend = np.clip(t / 0.045, 0, 1)[:, None] ** 0.7  # the sleeve cap starts at the shoulder seam
    outer = shoulder + (outer - shoulder) * blend
    inner = points - normals * width[:, None]
    start = float((armpit - arm[0]) @ (arm[1] - arm[0]) / np.linalg.norm(arm[1] - arm[0]))
    keep = t >= min(start, end)
    keep[-1] = True
    polygon = np.vstack([outer, inner[keep][::-1], [armpit]])
    return polygon, np.vstack([outer[-1], inner[-1]])


def garment_shapes(spec: GarmentSpec, skeleton: Skeleton) -> dict:
    """Every polygon and line of the garment on `skeleton`, in body units."""
    outline, hem = _body(spec)
    curve, cut, back = _neck(spec)
    ys, ws = _profile(spec)
    armpits = [np.array([side * ws[0], 0.265]) for side in (-1, 1)]
    sleeves, cuffs = [], []
    if spec.sleeve_length != "sleeveless":
        for side, arm, armpit in zip((-1, 1), skeleton.arms, armpits, strict=True):
            polygon, cuff = _sleeve(spec, arm, side, armpit)
            sleeves.append(polygon)
            cuffs.append(cuff)
    return {
        "body": outline,
        "hem": hem,
        "neck_curve": curve,
        "neck_cut": cut,
        "back": back,
        "armholes": [_armhole(spec, side, ws[0]) for side in (-1, 1)],
        "sleeves": sleeves,
        "cuffs": cuffs,
        "arms": list(skeleton.arms),
        "hem_y": float(ys[-1]),
    }
