"""The one place that assembles models into a Pipeline: the page, the CLI and the HTTP API all call `open_pipeline`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import detector
import gan
from gan.loading import pattern_editors
from numbpie import embedder as embedders
from numbpie import tagger as taggers
from numbpie import weights
from numbpie.app import demo, threads
from numbpie.app.indexer import require_catalog
from numbpie.app.pipeline import Pipeline
from numbpie.embedder import Embedder
from numbpie.errors import WeightsError
from numbpie.index import Index
from numbpie.tagger import Tagger

__all__ = ["Models", "bundled_editor", "default_models", "open_pipeline"]


@dataclass
class Models:
    """One embedder plus optional detector, style editor and tagger, and notes for the user."""

    embedder: Embedder
    detector: detector.Detector | None = None
    editor: gan.StyleEditor | None = None
    tagger: Tagger | None = None
    notes: list[str] = field(default_factory=list)


def _first_detector(notes: list[str]) -> detector.Detector | None:
    """Our bundled detector if registered, else numbpie's original SSD if downloaded."""
    for name in ("bundled", "numbpie_ssd"):
        if name not in weights.names("detector"):
            continue
        try:
            weights.resolve("detector", name)  # present? (cheap: TensorFlow loads only after)
            return detector.load(name)
        except WeightsError:
            continue
    notes.append("No garment detector is installed: the whole photo is searched "
                 "(crop it by hand under the photo).")
    return None


def bundled_editor(tagger: Callable | None = None) -> gan.StyleEditor | None:
    """A StyleEditor from the GAN weights registered in the manifest with a `role`, or None."""
    parts: dict = {"stargan": [], "cyclegan": {}, "pix2pix": None}
    for name in weights.names("gan"):
        role = weights.entry("gan", name).get("role")
        if role is None:
            continue
        try:
            editor = gan.load(name)
        except WeightsError:
            continue
        if role == "stargan":
            parts["stargan"].append(editor)
        elif role == "pattern":  # one pattern TagUnet: all four directions
            parts["cyclegan"].update(pattern_editors(editor))
        elif role.startswith("cyclegan:"):
            parts["cyclegan"][role.split(":", 1)[1]] = editor
        elif role == "pix2pix":
            parts["pix2pix"] = editor
    if not (parts["stargan"] or parts["cyclegan"] or parts["pix2pix"]):
        return None
    return gan.StyleEditor(tagger=tagger, **parts)


def _editor(notes: list[str], tagger: Callable | None) -> gan.StyleEditor | None:
    """Our bundled GAN editors, else the fashion_gan ones if downloaded."""
    editor = bundled_editor(tagger)
    if editor is not None:
        return editor
    try:
        return gan.load_fashion_gan(tagger=tagger)
    except WeightsError:
        notes.append("No style-editing GAN weights are installed, so style tags are disabled.")
        return None


def _tagger(notes: list[str]) -> Tagger | None:
    """The bundled attribute tagger, if registered and present."""
    if "bundled" not in weights.names("tagger"):
        notes.append("No attribute tagger is installed, so the style controls start at “keep”.")
        return None
    return taggers.load("bundled")


def default_models(embedder: str | Path | Embedder | None = None) -> Models:
    """The bundled models, falling back (with a note) where a part is not installed.

    `embedder` is a name, a path or a loaded Embedder; by default the bundled one, in bf16 where
    the CPU has it. Sizes every framework's thread pool first (`numbpie.app.threads`).
    """
    threads.configure()  # before TensorFlow starts its pools, which it does once
    notes: list[str] = []
    if not isinstance(embedder, Embedder):
        embedder = embedders.load(embedder)
    if embedder.name == "random":
        notes.append(
            "The image embedder runs with randomly initialised weights (no trained weights are "
            "bundled yet), so only near-identical images rank reliably."
        )
    tagger = _tagger(notes)
    editor = _editor(notes, tagger.tag if tagger else None)
    return Models(embedder, _first_detector(notes), editor, tagger, notes)


def open_pipeline(
    catalog_dir: str | Path | None = None,
    *,
    models: Models | None = None,
    embedder: str | Path | Embedder | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    precision: str = "auto",
) -> Pipeline:
    """The Pipeline over a catalog folder with the default models (detector, editor, tagger).

    `catalog_dir` None is the demo catalog, rendered and indexed on first use (`progress(stage,
    done, total)` reports that). The embedder is `embedder` if given, else the one the catalog's
    index was built with; `models` (e.g. cached by a front end) are used instead of loading them.
    `precision` "fp32" or "bf16" forces the embedder's; queries whose vectors do not agree with
    the index's precision run in the index's (`numbpie.embedder.matching`).
    """
    threads.configure()
    if precision != "auto" and not isinstance(embedder, Embedder):
        if catalog_dir is not None and embedder is None:
            require_catalog(catalog_dir)
            embedder = Index.read_manifest(catalog_dir)["embedder"]["name"]
        embedder = embedders.load(embedder, precision=precision)
    if catalog_dir is None:
        models = models or default_models(embedder)
        folder = demo.ensure_demo(models.embedder, progress=progress)
        embedder = models.embedder
    else:
        folder = Path(catalog_dir)
        require_catalog(folder)  # before any model loads
        if embedder is None:
            built_with = Index.read_manifest(folder)["embedder"]
            same = models is not None and models.embedder.identity == built_with
            embedder = models.embedder if same else built_with["name"]
        if models is None:
            models = default_models(embedder)
            embedder = models.embedder
    return Pipeline.open(folder, embedder=embedder, detector=models.detector, editor=models.editor,
                         tagger=models.tagger)
