"""The garment attribute vocabulary: the single source of truth for synth, GANs, tagger and UI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from numbpie.errors import TagError

__all__ = [
    "ATTRIBUTES",
    "CATEGORIES",
    "PALETTE",
    "PATTERN_ATTRIBUTES",
    "SHAPE_ATTRIBUTES",
    "applies_to",
    "preference_order",
    "validate_tags",
]

CATEGORIES = ("top", "dress")

# Named colours (sRGB). Names are what the UI and the tagger show; values are what synth paints.
PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (30, 30, 34),
    "white": (236, 234, 228),
    "grey": (128, 130, 134),
    "red": (190, 32, 44),
    "burgundy": (112, 22, 46),
    "pink": (236, 140, 172),
    "orange": (232, 118, 36),
    "yellow": (236, 200, 48),
    "green": (46, 140, 70),
    "olive": (110, 116, 52),
    "teal": (24, 128, 128),
    "blue": (40, 84, 184),
    "navy": (28, 38, 86),
    "purple": (110, 60, 150),
    "beige": (214, 192, 156),
    "brown": (118, 76, 46),
}

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "category": CATEGORIES,
    "sleeve_length": ("sleeveless", "short", "3/4", "long"),
    "fit": ("tight", "normal", "loose"),
    "neckline": ("round", "v", "wide"),
    "length": ("short", "knee", "long"),
    "pattern": ("solid", "floral", "stripes"),
    "color": tuple(PALETTE),
}

# Which editor changes which attribute (see ARCHITECTURE.md).
SHAPE_ATTRIBUTES = ("sleeve_length", "fit", "neckline", "length")
PATTERN_ATTRIBUTES = ("pattern",)


def applies_to(attribute: str, category: str) -> bool:
    """Whether `attribute` describes garments of `category` (length is for dresses only)."""
    return attribute != "length" or category == "dress"


def validate_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Return `tags` as a plain dict, or raise TagError naming the valid attributes/values."""
    clean = {}
    for name, value in tags.items():
        if name not in ATTRIBUTES:
            raise TagError(
                f"Unknown attribute {name!r}; valid attributes are: {', '.join(ATTRIBUTES)}."
            )
        if value not in ATTRIBUTES[name]:
            raise TagError(
                f"Unknown value {value!r} for {name}; valid values are: "
                f"{', '.join(ATTRIBUTES[name])}."
            )
        clean[name] = value
    return clean


def preference_order(tags: Sequence[Mapping[str, str]], wanted: Mapping[str, str]) -> list[int]:
    """Positions of `tags` ordered by how many of the `wanted` tags each carries, most first; ties keep their order.

    A search ranks its candidates by similarity, then this moves the ones that show what the
    shopper asked for (say sleeve_length=short after an edit) ahead of the rest.
    """
    def missing(position: int) -> int:
        return sum(tags[position].get(name) != value for name, value in wanted.items())

    return sorted(range(len(tags)), key=missing)
