"""Garment specs: every attribute of one synthetic garment, plus the continuous style that makes it unique."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numbpie.attributes import ATTRIBUTES, CATEGORIES, PALETTE, applies_to, validate_tags
from numbpie.errors import OptionError, TagError

__all__ = ["MOTIFS", "GarmentSpec", "random_spec", "spec_rng", "title"]

MOTIFS = ("blossom", "daisy", "rose", "ditsy")

# Flower and stripe colours that read well on most grounds.
_ACCENTS = (
    (245, 242, 232),
    (250, 214, 64),
    (236, 96, 120),
    (250, 160, 190),
    (232, 74, 52),
    (246, 140, 40),
    (120, 170, 230),
    (170, 120, 210),
    (30, 30, 36),
    (96, 180, 110),
    (34, 52, 120),
    (120, 30, 64),
    (36, 100, 62),
    (90, 50, 140),
)
_LEAF = ((70, 130, 60), (48, 104, 70), (110, 150, 70))


@dataclass(frozen=True)
class GarmentSpec:
    """One garment: categorical attributes, continuous style, and a seed for pose and background."""

    category: str
    sleeve_length: str
    fit: str
    neckline: str
    length: str
    pattern: str
    color: str
    tint: tuple[float, float, float]
    accent_rgb: tuple[int, int, int]
    flower_rgbs: tuple[tuple[int, int, int], ...]
    leaf_rgb: tuple[int, int, int]
    stripe_width: float
    stripe_angle: float
    stripe_ratio: float
    floral_motif: str
    floral_scale: float
    floral_density: float
    pattern_phase: tuple[float, float]
    shading: float
    sheen: float
    shoulder: float
    torso: float
    seed: int

    def __post_init__(self) -> None:
        validate_tags({name: getattr(self, name) for name in ATTRIBUTES})

    @property
    def rgb(self) -> tuple[int, int, int]:
        """The exact garment colour: the palette colour of `color` shifted by `tint`."""
        values = np.asarray(PALETTE[self.color], float) + np.asarray(self.tint)
        return tuple(int(v) for v in np.clip(np.round(values), 0, 255))

    @property
    def attributes(self) -> dict[str, str]:
        """The categorical attributes of this garment (length only for dresses)."""
        return {
            name: getattr(self, name)
            for name in ATTRIBUTES
            if name != "category" and applies_to(name, self.category)
        }


def spec_rng(seed: int, *stream: int) -> np.random.Generator:
    """A generator for one named random stream of `seed` (streams keep pose, scene and style apart)."""
    if int(seed) < 0:
        raise OptionError(f"Seeds are non-negative integers, not {seed}.")
    return np.random.default_rng([int(seed), *stream])


def _contrast(rgb, rng: np.random.Generator) -> tuple[int, int, int]:
    """An accent colour that stands out from `rgb`."""
    luma = np.array([0.3, 0.59, 0.11])
    base = np.asarray(rgb, float)
    options = [
        c
        for c in _ACCENTS
        if abs((np.asarray(c) - base) @ luma) > 55 and np.abs(np.asarray(c) - base).sum() > 150
    ]
    return options[int(rng.integers(len(options)))]


def random_spec(seed: int, category: str | None = None) -> GarmentSpec:
    """A random garment for `seed`; `category` forces the category without changing the rest."""
    rng = spec_rng(seed, 0)
    pick = {name: str(values[rng.integers(len(values))]) for name, values in ATTRIBUTES.items()}
    if category is not None:
        if category not in CATEGORIES:
            raise TagError(
                f"Unknown category {category!r}; valid categories are: {', '.join(CATEGORIES)}."
            )
        pick["category"] = category
    tint = tuple(float(v) for v in rng.normal(0, 6.0, 3))
    rgb = np.asarray(PALETTE[pick["color"]]) + tint
    accent = _contrast(rgb, rng)
    flowers = tuple(_contrast(rgb, rng) for _ in range(3))
    vertical = rng.random() < 0.3
    angle = (
        90.0
        if vertical
        else (0.0 if rng.random() < 0.65 else float(rng.choice([-1, 1]) * rng.uniform(25, 50)))
    )
    return GarmentSpec(
        category=pick["category"],
        sleeve_length=pick["sleeve_length"],
        fit=pick["fit"],
        neckline=pick["neckline"],
        length=pick["length"],
        pattern=pick["pattern"],
        color=pick["color"],
        tint=tint,
        accent_rgb=accent,
        flower_rgbs=flowers,
        leaf_rgb=_LEAF[int(rng.integers(len(_LEAF)))],
        stripe_width=float(rng.uniform(0.008, 0.026)),
        stripe_angle=angle,
        stripe_ratio=float(rng.uniform(0.28, 0.45)),
        floral_motif=MOTIFS[int(rng.integers(len(MOTIFS)))],
        floral_scale=float(rng.uniform(0.011, 0.024)),
        floral_density=float(rng.uniform(0.35, 0.8)),
        pattern_phase=(float(rng.random()), float(rng.random())),
        shading=float(rng.uniform(0.6, 1.0)),
        sheen=float(rng.uniform(0.0, 1.0)),
        shoulder=float(rng.uniform(0.95, 1.06)),
        torso=float(rng.uniform(0.96, 1.05)),
        seed=int(rng.integers(2**31)),
    )


_SLEEVE_WORDS = {
    "sleeveless": "sleeveless",
    "short": "short-sleeve",
    "3/4": "3/4-sleeve",
    "long": "long-sleeve",
}
_PATTERN_WORDS = {"solid": "", "floral": "floral ", "stripes": "striped "}
_NECK_WORDS = {"round": "round neck", "v": "V-neck", "wide": "wide neck"}


def title(spec: GarmentSpec) -> str:
    """A readable product title, e.g. 'Navy floral long-sleeve dress, V-neck, loose fit, knee length'."""
    head = f"{spec.color.capitalize()} {_PATTERN_WORDS[spec.pattern]}{_SLEEVE_WORDS[spec.sleeve_length]} {spec.category}"
    parts = [head, _NECK_WORDS[spec.neckline], f"{spec.fit} fit"]
    if spec.category == "dress":
        parts.append(f"{spec.length} length")
    return ", ".join(parts)
