"""Stand-in detector, style editor and tagger that make real, visible changes (for UI tests and screenshots)."""

from __future__ import annotations

import dataclasses

from PIL import ImageOps

from detector import Detection
from numbpie.app import assemble

_real_default_models = assemble.default_models


@dataclasses.dataclass(frozen=True)
class Edit:
    image: object
    steps: list


class FakeEditor:
    """Mirrors the garment (shape) and inverts its colours (pattern), so a search really changes."""

    def __init__(self):
        self.calls = []

    def edit(self, image, tags, model_view=False, current=None):
        self.calls.append((dict(tags), model_view))
        shape = ImageOps.mirror(image)
        pattern = ImageOps.invert(shape)
        return Edit(pattern, [("crop", image), ("shape", shape), ("pattern", pattern)])


class FakeDetector:
    """Two garments: the best one on the left half, another on the right half."""

    def detect(self, image, threshold=None):
        w, h = image.size
        return [Detection((0, 0, w / 2, h), 0.9, "dress"), Detection((w / 2, 0, w, h), 0.6, "top")]


class FakeTagger:
    """Reads every garment as a tight, solid dress."""

    def tag(self, image) -> dict:
        return {"category": "dress", "pattern": "solid", "fit": "tight"}


def with_stand_ins(loaded: assemble.Models, editor: FakeEditor | None = None) -> assemble.Models:
    """`loaded` with the stand-in detector, editor and tagger."""
    return dataclasses.replace(loaded, detector=FakeDetector(), editor=editor or FakeEditor(), tagger=FakeTagger(),
                               notes=[*[n for n in loaded.notes if "embedder" in n],
                                      "Stand-in detector, editor and tagger (test build)."])


def install() -> None:
    """Make numbpie.app.assemble.default_models return the real models plus the stand-ins."""
    assemble.default_models = lambda embedder=None: with_stand_ins(_real_default_models(embedder))
