"""Apply style tags to a garment image: StarGAN for shape, CycleGAN for pattern, pix2pix for the model view."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from numbpie.attributes import ATTRIBUTES, SHAPE_ATTRIBUTES, applies_to, validate_tags
from numbpie.errors import EditError

__all__ = [
    "DIRECTIONS",
    "FASHION_GAN_LABELS",
    "SHAPE_LAYOUT",
    "Edit",
    "Editor",
    "StyleEditor",
    "denorm",
    "encode_label",
    "keep_detail",
    "pattern_plan",
    "to_image",
    "to_tensor",
]

# A StarGAN label layout: (attribute, values in one-hot order) groups, concatenated.
Layout = tuple[tuple[str, tuple[str, ...]], ...]

# Our bundled StarGAN: one model over every shape attribute, values in numbpie.attributes order.
SHAPE_LAYOUT: Layout = tuple((name, ATTRIBUTES[name]) for name in SHAPE_ATTRIBUTES)

# The original fashion_gan StarGANs: one per attribute, with these label orders.
FASHION_GAN_LABELS: dict[str, tuple[str, ...]] = {
    "sleeve_length": ("3/4", "long", "short", "sleeveless"),
    "fit": ("loose", "normal", "tight"),
    "neckline": ("round", "v", "wide"),
    "length": ("short", "knee", "long"),
}

# CycleGAN directions, named '<pattern>_<add|remove>'.
DIRECTIONS = ("floral_add", "floral_remove", "stripes_add", "stripes_remove")


def to_tensor(image: Image.Image, size: int) -> torch.Tensor:
    """An RGB image as a (1, 3, size, size) float tensor in [-1, 1] (mean 0.5, std 0.5); size 0 keeps its size."""
    image = image.convert("RGB")
    pixels = np.asarray(image if size == 0 else image.resize((size, size), Image.BILINEAR), np.float32)
    return torch.from_numpy(pixels / 127.5 - 1.0).permute(2, 0, 1)[None]


def denorm(x: torch.Tensor) -> torch.Tensor:
    """Map [-1, 1] back to [0, 1]."""
    return ((x + 1) / 2).clamp_(0, 1)


def to_image(x: torch.Tensor, size: tuple[int, int] | None = None) -> Image.Image:
    """A (3, H, W) tensor in [-1, 1] as an RGB image, resized to `size` (w, h) if given."""
    pixels = (denorm(x.detach().float().cpu()).permute(1, 2, 0).numpy() * 255).round()
    image = Image.fromarray(pixels.astype(np.uint8), "RGB")
    return (
        image if size is None or image.size == tuple(size) else image.resize(size, Image.BILINEAR)
    )


def keep_detail(image: Image.Image, x: torch.Tensor, y: torch.Tensor, low: float = 0.04,
                high: float = 0.2) -> Image.Image:
    """`image` plus the generator's change (y - x, at its input size) upsampled to `image`'s size,
    without the input's fine detail where the change is large.

    Where the generator changes nothing, every pixel of the full-size input stays (not a blurred
    copy of its small version). Where it changes a pixel by `high` or more (in [-1, 1] units; a
    sleeve removed, a print replaced), the input's detail finer than the generator sees is
    dropped too, else the removed sleeve's outline or the old stripes would show through;
    between `low` and `high` the two blend.
    """
    full = to_tensor(image, 0)

    def up(t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t, size=full.shape[2:], mode="bilinear", align_corners=False)

    change = (y - x).abs().amax(1, keepdim=True)
    weight = F.max_pool2d(((change - low) / (high - low)).clamp(0, 1), 3, stride=1, padding=1)
    detail = full - up(x)  # what the generator's input size cannot hold
    return to_image((full + up(y - x) - up(weight) * detail)[0].clamp_(-1, 1))


def encode_label(target: Mapping[str, str], layout: Layout) -> list[float]:
    """Concatenated one-hot groups for `target`; a group that does not apply (a top's length) is zero."""
    vector = []
    for name, values in layout:
        value = target.get(name)
        if value is None and applies_to(name, target.get("category")):
            raise EditError(
                f"The garment's current {name} is needed for this StarGAN edit; pass current= "
                "(e.g. from numbpie.tagger) or give the StyleEditor a tagger."
            )
        if value is not None and value not in values:
            raise EditError(
                f"This StarGAN knows {name} values {', '.join(values)}, not {value!r}."
            )
        vector += [float(value == v) for v in values]
    return vector


def pattern_plan(target: str | None, current: str | None) -> list[str]:
    """CycleGAN directions that take a `current` pattern to `target` (e.g. floral -> stripes)."""
    if target is None or target == current:
        return []
    if target == "solid":
        if current is None:
            raise EditError(
                "The garment's current pattern is needed to remove it; pass current= "
                "(e.g. from numbpie.tagger) or give the StyleEditor a tagger."
            )
        return [f"{current}_remove"]
    current = current or "solid"  # adding a pattern to a garment of unknown pattern
    return ([] if current == "solid" else [f"{current}_remove"]) + [f"{target}_add"]


@dataclass(frozen=True)
class Editor:
    """One generator in eval mode with its preprocessing: input size, mean/std 0.5, label layout."""

    family: str  # 'stargan', 'cyclegan' or 'pix2pix'
    net: nn.Module
    image_size: int
    layout: Layout = ()  # StarGAN only
    name: str = ""

    @property
    def attributes(self) -> tuple[str, ...]:
        """The attributes this editor's label vector covers (StarGAN only)."""
        return tuple(name for name, _ in self.layout)

    def label(self, label: Mapping[str, str] | Sequence[float] | torch.Tensor) -> torch.Tensor:
        """A (1, c_dim) label tensor from target tags or a raw vector."""
        if isinstance(label, Mapping):
            if not self.layout:
                raise ValueError(
                    "This StarGAN has no label layout; pass a raw label vector or load it with labels=."
                )
            label = encode_label(label, self.layout)
        vector = torch.as_tensor(label, dtype=torch.float32).reshape(1, -1)
        if vector.shape[1] != self.net.c_dim:
            raise ValueError(
                f"This StarGAN takes a label of length {self.net.c_dim}, not {vector.shape[1]}."
            )
        return vector

    def apply(self, image: Image.Image, label=None) -> Image.Image:
        """Run the generator on `image` (with a target `label` for StarGAN); same size out as in."""
        if self.family == "stargan" and label is None:
            raise ValueError("A StarGAN edit needs a target label (tags or a vector).")
        x = to_tensor(image, self.image_size)
        with torch.inference_mode():
            y = self.net(x, self.label(label)) if self.family == "stargan" else self.net(x)
        if self.family == "pix2pix":  # a new view: nothing of the input's detail carries over
            return to_image(y[0], image.size)
        return keep_detail(image, x, y)


@dataclass(frozen=True)
class Edit:
    """The edited image and every intermediate one, as (step name, image) from 'crop' on."""

    image: Image.Image
    steps: list[tuple[str, Image.Image]] = field(default_factory=list)


class StyleEditor:
    """Applies shape tags (StarGAN), then pattern tags (CycleGAN), then optionally the model view (pix2pix).

    Holds no mutable state during `edit`, so one instance can serve several threads.
    """

    def __init__(
        self,
        stargan: Editor | Sequence[Editor] | Mapping[str, Editor] | None = None,
        cyclegan: Mapping[str, Editor] | None = None,
        pix2pix: Editor | None = None,
        tagger: Callable[[Image.Image], Mapping[str, str]] | None = None,
    ):
        if isinstance(stargan, Editor):
            stargan = [stargan]
        elif isinstance(stargan, Mapping):
            stargan = list(stargan.values())
        self.stargan: tuple[Editor, ...] = tuple(stargan or ())
        self.cyclegan: dict[str, Editor] = dict(cyclegan or {})
        unknown = set(self.cyclegan) - set(DIRECTIONS)
        if unknown:
            raise ValueError(
                f"Unknown CycleGAN directions {sorted(unknown)}; valid ones are: {', '.join(DIRECTIONS)}."
            )
        self.pix2pix = pix2pix
        self.tagger = tagger

    def __repr__(self) -> str:
        shape = sorted({a for e in self.stargan for a in e.attributes})
        return f"StyleEditor(shape={shape}, pattern={sorted(self.cyclegan)}, model_view={self.pix2pix is not None})"

    @property
    def has_model_view(self) -> bool:
        """Whether `edit(..., model_view=True)` can run (a pix2pix generator is loaded)."""
        return self.pix2pix is not None

    def can_edit(self, tags: Mapping[str, str], current: Mapping[str, str]) -> bool:
        """Whether this editor holds the generators `tags` need on a garment with `current` tags."""
        try:
            self.shape_plan(tags, current)
            for direction in pattern_plan(tags.get("pattern"), current.get("pattern")):
                self._cyclegan(direction)
        except EditError:
            return False
        return True

    def shape_plan(
        self, tags: Mapping[str, str], current: Mapping[str, str]
    ) -> list[tuple[Editor, torch.Tensor]]:
        """(StarGAN, label) passes that apply the shape tags that differ from `current`."""
        wanted = [a for a in SHAPE_ATTRIBUTES if a in tags and tags[a] != current.get(a)]
        target = {**current, **tags}
        category = target.get("category")
        for name in wanted:
            if category and not applies_to(name, category):
                raise EditError(
                    f"{name} applies to dresses only, and this garment is a {category}."
                )
        if wanted and not self.stargan:
            raise EditError(
                "Shape tags need a StarGAN: pass stargan= (e.g. gan.load(...) or gan.load_fashion_gan(dir))."
            )
        plan = []
        for editor in self.stargan:
            mine = [a for a in wanted if a in editor.attributes]
            if mine:
                plan.append((editor, editor.label(target)))
                wanted = [a for a in wanted if a not in mine]
        if wanted:
            raise EditError(
                f"No loaded StarGAN edits {', '.join(wanted)}; load one that does (gan.load_fashion_gan(dir))."
            )
        return plan

    def edit(
        self,
        image: Image.Image,
        tags: Mapping[str, str],
        model_view: bool = False,
        current: Mapping[str, str] | None = None,
    ) -> Edit:
        """Apply `tags` to `image`; `current` (or the tagger) gives the garment's present tags."""
        tags = validate_tags(tags)
        if current is None:
            current = self.tagger(image) if self.tagger is not None else {}
        current = validate_tags(current)
        for name in ("category", "color"):
            if name in tags and name in current and tags[name] != current[name]:
                raise EditError(
                    f"{name} cannot be edited; only {', '.join(SHAPE_ATTRIBUTES)} and pattern can."
                )
        shape = self.shape_plan(tags, current)
        pattern = [
            self._cyclegan(d) for d in pattern_plan(tags.get("pattern"), current.get("pattern"))
        ]
        if model_view and self.pix2pix is None:
            raise EditError(
                "The model view needs a pix2pix generator: pass pix2pix= (e.g. gan.load(...))."
            )

        image = image.convert("RGB")
        steps = [("crop", image)]
        if shape:
            for editor, label in shape:
                image = editor.apply(image, label)
            steps.append(("shape", image))
        if pattern:
            for editor in pattern:
                image = editor.apply(image)
            steps.append(("pattern", image))
        if model_view:
            image = self.pix2pix.apply(image)
            steps.append(("model", image))
        return Edit(image, steps)

    def _cyclegan(self, direction: str) -> Editor:
        if direction not in self.cyclegan:
            raise EditError(
                f"Pattern edit {direction} needs a CycleGAN: pass cyclegan={{'{direction}': gan.load(path)}} "
                "or use gan.load_fashion_gan(dir)."
            )
        return self.cyclegan[direction]
