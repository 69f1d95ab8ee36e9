"""Attribute tagger: a small CNN that reads a garment's category, shape, pattern and colour.

The UI uses it to pre-select a garment's current tags; `numbpie eval edits` uses it to judge
whether an edit reached its target. One shared trunk, one linear head per attribute in
`numbpie.attributes.ATTRIBUTES`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file
from torch import nn

from numbpie import weights
from numbpie.attributes import ATTRIBUTES, applies_to
from numbpie.embedder import file_settings, to_batch

__all__ = ["INPUT_SIZE", "Tagger", "TaggerNet", "accuracy", "label_targets", "load", "stage_widths"]

INPUT_SIZE = 112
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
WIDTHS = (16, 32, 64, 128, 256)  # five stages: each output sees 125 px of a 144 px view (four: 61 px)
IGNORE = -100  # target for an attribute that does not apply (length of a top)


def _stage(cin: int, cout: int) -> nn.Sequential:
    """Two 3x3 convolutions, the second one halving the resolution."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class TaggerNet(nn.Module):
    """A CNN trunk (one stage per width) with global average pooling and one classifier per attribute."""

    def __init__(self, widths: Sequence[int] = WIDTHS):
        super().__init__()
        channels = (3, *widths)
        self.trunk = nn.Sequential(*(_stage(a, b) for a, b in zip(channels, channels[1:], strict=False)))
        self.heads = nn.ModuleDict({name: nn.Linear(widths[-1], len(values))
                                    for name, values in ATTRIBUTES.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = self.trunk(x).mean(dim=(2, 3))
        return {name: head(pooled) for name, head in self.heads.items()}


def label_targets(labels: Sequence[dict[str, str]]) -> dict[str, torch.Tensor]:
    """Per attribute, the index of each item's value (IGNORE where the item has none)."""
    return {name: torch.tensor([values.index(item[name]) if name in item else IGNORE for item in labels])
            for name, values in ATTRIBUTES.items()}


class Tagger:
    """A trained TaggerNet plus preprocessing; `tag` is thread-safe and deterministic."""

    def __init__(self, model: TaggerNet, name: str = "tagger", input_size: int = INPUT_SIZE):
        self.model = model.eval()
        self.name, self.input_size = name, input_size
        self._lock = threading.Lock()

    def probabilities(self, images: Sequence[Image.Image]) -> list[dict[str, dict[str, float]]]:
        """For each image, every attribute's value probabilities."""
        batch = torch.from_numpy(to_batch(images, self.input_size, MEAN, STD))
        with self._lock, torch.inference_mode():
            logits = self.model(batch)
        probs = {name: torch.softmax(out, dim=1).numpy() for name, out in logits.items()}
        return [{name: dict(zip(ATTRIBUTES[name], map(float, p[n]), strict=True)) for name, p in probs.items()}
                for n in range(len(images))]

    def tag_many(self, images: Sequence[Image.Image]) -> list[dict[str, str]]:
        """Each image's most likely value per attribute; `length` only for dresses."""
        out = []
        for probs in self.probabilities(images) if images else []:
            best = {name: max(p, key=p.get) for name, p in probs.items()}
            out.append({k: v for k, v in best.items() if applies_to(k, best["category"])})
        return out

    def tag(self, image: Image.Image) -> dict[str, str]:
        """The image's tags, e.g. {'category': 'dress', 'sleeve_length': 'long', ..., 'color': 'red'}."""
        return self.tag_many([image])[0]


def stage_widths(state: dict[str, torch.Tensor]) -> tuple[int, ...]:
    """The output width of each trunk stage of a TaggerNet state_dict (as many stages as it has)."""
    widths = []
    while f"trunk.{len(widths)}.3.weight" in state:
        widths.append(state[f"trunk.{len(widths)}.3.weight"].shape[0])
    if not widths:
        raise KeyError("trunk.0.3.weight")
    return tuple(widths)


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix != ".safetensors":
        raise weights.WeightsError(f"{path}: tagger weights must be a .safetensors file.")
    return {k: v.float() for k, v in load_file(path).items()}


def load(name_or_path: str | Path = "bundled") -> Tagger:
    """A Tagger from a manifest name (`bundled`) or a safetensors file written by train-tagger."""
    path, entry = weights.resolve("tagger", str(name_or_path))
    state = _read_state(path)
    try:
        model = TaggerNet(stage_widths(state))
        model.load_state_dict(state)
    except (KeyError, RuntimeError) as error:
        raise weights.WeightsError(f"{path} is not a tagger state_dict ({str(error).splitlines()[0]}).") from None
    size = entry.get("input_size") or file_settings(path).get("input_size", INPUT_SIZE)
    return Tagger(model, str(name_or_path) if entry else path.name, size)


def accuracy(tagger: Tagger, images: Sequence[Image.Image], labels: Sequence[dict[str, str]]) -> dict[str, float]:
    """Per attribute, the fraction of images where the tagger reads the labelled value."""
    predicted = []
    for start in range(0, len(images), 64):
        predicted += tagger.tag_many(images[start:start + 64])
    out = {}
    for name in ATTRIBUTES:
        pairs = [(p.get(name), t[name]) for p, t in zip(predicted, labels, strict=True) if name in t]
        out[name] = float(np.mean([p == t for p, t in pairs])) if pairs else float("nan")
    return out
