"""The default model set for the app: whatever bundled or downloaded weights are installed."""

from __future__ import annotations

from dataclasses import dataclass, field

from numbpie import embedder as embedders
from numbpie import weights

__all__ = ["Models", "load_default"]


@dataclass
class Models:
    """One embedder plus optional detector, style editor and tagger, and notes for the user."""

    embedder: object
    detector: object | None = None
    editor: object | None = None
    tagger: object | None = None
    notes: list[str] = field(default_factory=list)


def _first_detector(notes: list[str]):
    """Our bundled detector if registered, else numbpie's original SSD if downloaded."""
    import detector

    for name in ("bundled", "numbpie_ssd"):
        if name not in weights.names("detector"):
            continue
        try:
            weights.resolve("detector", name)  # present? (cheap: TensorFlow loads only after)
            return detector.load(name)
        except (FileNotFoundError, ValueError):
            continue
    notes.append("No garment detector is installed: the whole photo is searched "
                 "(crop it by hand under the photo).")
    return None


def _editor(notes: list[str]):
    """The fashion_gan editors if downloaded; no GAN weights are bundled yet."""
    import gan

    try:
        return gan.load_fashion_gan()
    except (FileNotFoundError, ValueError):
        notes.append("No style-editing GAN weights are installed, so style tags are disabled.")
        return None


def load_default() -> Models:
    """The bundled models, falling back (with a note) where a part is not installed."""
    notes: list[str] = []
    embedder = embedders.load()
    if embedder.name == "random":
        notes.append(
            "The image embedder runs with randomly initialised weights (no trained weights are "
            "bundled yet), so only near-identical images rank reliably."
        )
    return Models(embedder, _first_detector(notes), _editor(notes), None, notes)
