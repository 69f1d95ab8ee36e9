"""The Pipeline: load → detect/crop → edit → embed → search → catalog lookup, each step timed."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from numbpie import images
from numbpie.attributes import validate_tags
from numbpie.catalog import Product
from numbpie.index import Index
from numbpie.indexer import open_catalog

__all__ = ["Match", "Pipeline", "Result", "crop_box"]


@dataclass(frozen=True)
class Match:
    """One search hit: a catalog product and its cosine score."""

    product: Product
    score: float


@dataclass
class Result:
    """Everything one query produced, for the UI, the CLI and the tests."""

    image: Image.Image  # the photo as loaded
    crop: Image.Image  # the garment that was searched for (before any edit)
    box: tuple[float, float, float, float] | None  # where `crop` came from; None = whole image
    detections: list = field(default_factory=list)
    edit: object | None = None  # gan.Edit(image, steps) when tags were applied
    matches: list[Match] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # step -> seconds

    @property
    def query(self) -> Image.Image:
        """The image that was embedded: the edited garment if there was an edit."""
        return self.edit.image if self.edit is not None else self.crop


@contextmanager
def _timed(timings: dict, step: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[step] = timings.get(step, 0.0) + time.perf_counter() - start


def crop_box(image: Image.Image, box) -> Image.Image:
    """`image` cropped to `box` (x0, y0, x1, y1), clipped to the image; a degenerate box is an error."""
    x0, y0, x1, y1 = (round(v) for v in box)
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(image.width, x1), min(image.height, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"The crop box {tuple(box)} leaves no image; draw a larger box.")
    return image.crop((x0, y0, x1, y1))


class Pipeline:
    """One catalog, index and embedder, plus an optional detector and style editor."""

    def __init__(self, catalog, index: Index, embedder, detector=None, editor=None):
        self.catalog, self.index, self.embedder = catalog, index, embedder
        self.detector, self.editor = detector, editor

    @classmethod
    def open(cls, folder: str | Path, embedder=None, detector=None, editor=None) -> Pipeline:
        """A pipeline over a catalog folder built by `python -m numbpie index` (or the demo)."""
        from numbpie import embedder as embedders

        folder = Path(folder)
        if not (folder / "catalog.sqlite").exists():
            raise FileNotFoundError(
                f"No catalog in {folder}. Build one with: python -m numbpie index SOURCE --catalog {folder}"
            )
        catalog = open_catalog(folder)
        if embedder is None:  # the one the index was built with
            embedder = Index.read_manifest(folder)["embedder"]["name"]
        if isinstance(embedder, str):
            embedder = embedders.load(embedder)
        ids = catalog.ids()
        index = Index.load(folder, embedder=embedder.identity, count=len(ids), keep_ids=ids)
        return cls(catalog, index, embedder, detector, editor)

    def search(self, source, k: int = 5, *, tags: dict | None = None, model_view: bool = False,
               current: dict | None = None, box=None, detect: bool = True,
               threshold: float | None = None, min_score: float = 0.0,
               category: str | None = None) -> Result:
        """Run one query from raw bytes, a path, a file object or a PIL image.

        `tags` restyle the garment before the search; `current` are its present tags (the
        editor needs them to know what to change; without them it asks its tagger).
        """
        timings: dict[str, float] = {}
        with _timed(timings, "load"):
            image = source.convert("RGB") if isinstance(source, Image.Image) else images.load(source)
        result = self._locate(image, box, detect, threshold, timings)
        if tags or model_view:
            result.edit = self.edit(result.crop, tags or {}, model_view, current, timings)
        with _timed(timings, "embed"):
            vector = self.embedder.embed([result.query])
        result.matches = self._retrieve(vector, k, min_score, category, timings)
        result.timings = timings
        return result

    def _locate(self, image, box, detect, threshold, timings) -> Result:
        if box is not None:
            return Result(image, crop_box(image, box), tuple(box))
        if not (detect and self.detector is not None):
            return Result(image, image, None)
        import detector as detectors

        with _timed(timings, "detect"):
            detections = self.detector.detect(image, threshold=threshold)
            chosen = detectors.crops(image, detections)
        return Result(image, chosen.crop, chosen.box, detections)

    def edit(self, crop: Image.Image, tags: dict, model_view: bool = False,
             current: dict | None = None, timings=None):
        """Apply style tags (and optionally the model view) to a garment crop."""
        tags = validate_tags(tags)
        if self.editor is None:
            raise RuntimeError("No style editor is loaded, so tags cannot be applied.")
        with _timed(timings if timings is not None else {}, "edit"):
            return self.editor.edit(crop, tags, model_view=model_view, current=current)

    def _retrieve(self, vector, k, min_score, category, timings) -> list[Match]:
        # A category filter searches deeper, then keeps the first k that pass.
        depth = k if category is None else min(len(self.index), max(10 * k, 100))
        with _timed(timings, "search"):
            scores, ids = self.index.search(vector, depth)
        with _timed(timings, "lookup"):
            pairs = [(i, s) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0 and s >= min_score]
            products = self.catalog.get([i for i, _ in pairs])
            matches = [Match(p, float(s)) for p, (_, s) in zip(products, pairs, strict=True)
                       if category is None or p.category == category]
        return matches[:k]
