"""The default model set for the app: whatever bundled or downloaded weights are installed."""

from __future__ import annotations

from dataclasses import dataclass, field

from numbpie import embedder as embedders
from numbpie import weights

__all__ = ["Models", "bundled_editor", "load_default"]


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


def bundled_editor(tagger=None):
    """A StyleEditor from the GAN weights registered in the manifest with a `role`, or None."""
    import gan

    parts: dict = {"stargan": [], "cyclegan": {}, "pix2pix": None}
    for name in weights.names("gan"):
        role = weights.entry("gan", name).get("role")
        if role is None:
            continue
        try:
            editor = gan.load(name)
        except FileNotFoundError:
            continue
        if role == "stargan":
            parts["stargan"].append(editor)
        elif role.startswith("cyclegan:"):
            parts["cyclegan"][role.split(":", 1)[1]] = editor
        elif role == "pix2pix":
            parts["pix2pix"] = editor
    if not (parts["stargan"] or parts["cyclegan"] or parts["pix2pix"]):
        return None
    return gan.StyleEditor(tagger=tagger, **parts)


def _editor(notes: list[str], tagger):
    """Our bundled GAN editors, else the fashion_gan ones if downloaded."""
    import gan

    editor = bundled_editor(tagger)
    if editor is not None:
        return editor
    try:
        return gan.load_fashion_gan(tagger=tagger)
    except (FileNotFoundError, ValueError):
        notes.append("No style-editing GAN weights are installed, so style tags are disabled.")
        return None


def _tagger(notes: list[str]):
    """The bundled attribute tagger, if registered and present."""
    from numbpie import tagger

    if "bundled" not in weights.names("tagger"):
        notes.append("No attribute tagger is installed, so the style controls start at “keep”.")
        return None
    return tagger.load("bundled")


def load_default() -> Models:
    """The bundled models, falling back (with a note) where a part is not installed."""
    notes: list[str] = []
    embedder = embedders.load()
    if embedder.name == "random":
        notes.append(
            "The image embedder runs with randomly initialised weights (no trained weights are "
            "bundled yet), so only near-identical images rank reliably."
        )
    tagger = _tagger(notes)
    editor = _editor(notes, tagger.tag if tagger else None)
    return Models(embedder, _first_detector(notes), editor, tagger, notes)
