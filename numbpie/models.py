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


def _optional(kind: str, loader, notes: list[str], missing: str):
    """Load the bundled model of `kind` if one is registered and present, else note why not."""
    if "bundled" not in weights.names(kind):
        notes.append(missing)
        return None
    try:
        return loader("bundled")
    except (FileNotFoundError, ValueError) as error:
        notes.append(f"The bundled {kind} could not be loaded: {error}")
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

    def load_detector(name):
        import detector

        return detector.load(name)

    def load_editor(name):
        import gan

        return gan.load_editor(name)

    found = _optional("detector", load_detector, notes,
                      "No garment detector is installed: the whole photo is searched (crop it by hand below).")
    editor = _optional("gan", load_editor, notes, "")
    return Models(embedder, found, editor, None, [n for n in notes if n])
