"""The Pipeline: load → detect/crop → tag → edit → embed → search → catalog lookup, each step timed."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from detector import Detection, crops, find_garments
from gan import Edit, StyleEditor
from numbpie import embedder as embedders
from numbpie import images
from numbpie.app.indexer import open_catalog, require_catalog
from numbpie.attributes import preference_order, validate_tags
from numbpie.catalog import Catalog, Product
from numbpie.embedder import Embedder
from numbpie.errors import CatalogError, EditError, OptionError
from numbpie.index import Index
from numbpie.tagger import Tagger

if TYPE_CHECKING:  # detector.Detector is only named here: importing it loads TensorFlow
    from detector import Detector

__all__ = ["Match", "Pipeline", "Result", "manual_crop"]


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
    detections: list[Detection] = field(default_factory=list)
    edit: Edit | None = None  # when tags (or the model view) were applied
    matches: list[Match] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # step -> seconds
    vector: np.ndarray | None = None  # the query's unit vector (1, D), what `Pipeline.rank` searches with
    product: Product | None = None  # the catalog product the query is, if it is one (never among its matches)
    prefer: dict[str, str] = field(default_factory=dict)  # after an edit: the tags its matches should carry first

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


def manual_crop(image: Image.Image, box) -> Image.Image:
    """`image` cut to a hand-drawn `box` (x0, y0, x1, y1), clipped to the image; a box under 2 px is an error."""
    x0, y0, x1, y1 = (round(v) for v in box)
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(image.width, x1), min(image.height, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise OptionError(f"The crop box {tuple(box)} leaves no image; draw a larger box.")
    return image.crop((x0, y0, x1, y1))


class Pipeline:
    """One catalog, index and embedder, plus an optional detector, style editor and tagger."""

    def __init__(self, catalog: Catalog, index: Index, embedder: Embedder, detector: Detector | None = None,
                 editor: StyleEditor | None = None, tagger: Tagger | None = None):
        self.catalog, self.index, self.embedder = catalog, index, embedder
        self.detector, self.editor, self.tagger = detector, editor, tagger

    @classmethod
    def open(cls, folder: str | Path, embedder: str | Path | Embedder | None = None,
             detector: Detector | None = None, editor: StyleEditor | None = None,
             tagger: Tagger | None = None) -> Pipeline:
        """A pipeline over a catalog folder built by `python -m numbpie index` (or the demo)."""
        folder = Path(folder)
        require_catalog(folder)
        catalog = open_catalog(folder)
        if embedder is None:  # the one the index was built with
            embedder = Index.read_manifest(folder)["embedder"]["name"]
        if not isinstance(embedder, Embedder):
            embedder = embedders.load(embedder)
        ids = catalog.ids()
        index = Index.load(folder, embedder=embedder.identity, count=len(ids), keep_ids=ids)
        embedder = embedders.matching(embedder, index, catalog)  # queries in the index's precision
        return cls(catalog, index, embedder, detector, editor, tagger)

    def search(self, source, k: int = 5, *, tags: dict | None = None, model_view: bool = False,
               current: dict | None = None, box=None, detect: bool = True,
               threshold: float | None = None, min_score: float = 0.0,
               category: str | None = None) -> Result:
        """Run one query from raw bytes, a path, a file object or a PIL image.

        `tags` restyle the garment before the search; `current` are its present tags (the
        editor needs them to know what to change; without them the pipeline's tagger reads them).
        """
        result = self.prepare(source, tags=tags, model_view=model_view, current=current, box=box, detect=detect,
                              threshold=threshold)
        return self.rank(result, k, min_score=min_score, category=category)

    def prepare(self, source, *, tags: dict | None = None, model_view: bool = False, current: dict | None = None,
                box=None, detect: bool = True, threshold: float | None = None) -> Result:
        """A query up to its vector (load, detect/crop, edit, embed), without matches; `rank` then searches.

        A front end keeps it while the photo, crop and tags stay the same, so a filter change only re-searches.
        """
        timings: dict[str, float] = {}
        with _timed(timings, "load"):
            image = source.convert("RGB") if isinstance(source, Image.Image) else images.load(source)
        result = self._locate(image, box, detect, threshold, timings)
        if tags or model_view:
            result.edit = self.edit(result.crop, tags or {}, model_view, current, timings)
            result.prefer = self.sought(result.edit.image, tags or {}, timings)
        with _timed(timings, "embed"):
            result.vector = self.embedder.embed([result.query])
        result.timings = timings
        return result

    def warm_up(self) -> None:
        """Run each model once on a catalog picture, so that a shopper's first photo does not pay for
        building them (the embedder's frozen network, TensorFlow's kernels: seconds on 2 cores)."""
        product = next(iter(self.catalog), None)
        image = images.load(product.image) if product is not None else Image.new("RGB", (128, 128), "white")
        self.tag(self.prepare(image).crop)

    def product_query(self, product_id: int) -> Result:
        """A catalog product as the query: its picture and its indexed vector (nothing is detected or embedded)."""
        timings: dict[str, float] = {}
        with _timed(timings, "product"):
            try:
                [product] = self.catalog.get([product_id])
                vector = self.index.vectors([product_id])
            except KeyError:
                raise CatalogError(f"Product {product_id} is no longer in this catalog; pick another one.") from None
            image = images.load(product.image)
        return Result(image, image, None, vector=vector, product=product, timings=timings)

    def rank(self, result: Result, k: int = 5, *, min_score: float = 0.0, category: str | None = None) -> Result:
        """A copy of a prepared `result` with its top-k matches; only the index search and the lookup run."""
        timings = {step: t for step, t in result.timings.items() if step not in ("search", "lookup")}
        own = result.product.id if result.product is not None else None
        matches = self._retrieve(result.vector, k + (own is not None), min_score, category, timings, result.prefer)
        matches = [m for m in matches if m.product.id != own][:k]
        return dataclasses.replace(result, matches=matches, timings=timings)

    def _locate(self, image, box, detect, threshold, timings) -> Result:
        if box is not None:
            return Result(image, manual_crop(image, box), tuple(box))
        if not (detect and self.detector is not None):
            return Result(image, image, None)
        with _timed(timings, "detect"):
            detections = find_garments(self.detector, image, threshold)
            chosen = crops(image, detections)
        return Result(image, chosen.crop, chosen.box, detections)

    def tag(self, crop: Image.Image) -> dict[str, str]:
        """The garment's present tags read by the tagger ({} without one), e.g. {'category': 'dress', ...}."""
        return dict(self.tagger.tag(crop)) if self.tagger is not None else {}

    def sought(self, edited: Image.Image, tags: Mapping[str, str], timings: dict | None = None) -> dict[str, str]:
        """The changed attributes as the tagger reads them on the edited garment (as requested, without a tagger).

        Matches carrying these come first, so the results show the change the picture shows: a
        failed edit is not hidden by results that carry the request anyway.
        """
        tags = validate_tags(tags)
        if not tags or self.tagger is None:
            return tags
        with _timed(timings if timings is not None else {}, "tag"):
            read = self.tag(edited)
        return {name: read.get(name, value) for name, value in tags.items()}

    def edit(self, crop: Image.Image, tags: Mapping[str, str], model_view: bool = False,
             current: Mapping[str, str] | None = None, timings: dict | None = None) -> Edit:
        """Apply style tags (and optionally the model view) to a garment crop; EditError if they cannot be."""
        tags = validate_tags(tags)
        if self.editor is None:
            raise EditError("No style editor is loaded, so tags cannot be applied.")
        timings = timings if timings is not None else {}
        if current is None and self.tagger is not None:
            with _timed(timings, "tag"):
                current = self.tag(crop)
        with _timed(timings, "edit"):
            return self.editor.edit(crop, tags, model_view=model_view, current=current)

    def similar(self, product_id: int, k: int = 5, *, min_score: float = 0.0,
                category: str | None = None) -> list[Match]:
        """The k products nearest to a catalog product by its indexed vector, itself left out."""
        vector = self.index.vectors([product_id])  # KeyError for an id the index lacks
        matches = self._retrieve(vector, k + 1, min_score, category, {})
        return [m for m in matches if m.product.id != product_id][:k]

    def _retrieve(self, vector, k, min_score, category, timings, prefer=None) -> list[Match]:
        # A category filter or preferred tags search deeper, then keep the first k that pass / carry them.
        depth = k if category is None and not prefer else min(len(self.index), max(10 * k, 100))
        with _timed(timings, "search"):
            scores, ids = self.index.search(vector, depth)
        with _timed(timings, "lookup"):
            pairs = [(i, s) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0 and s >= min_score]
            products = self.catalog.get([i for i, _ in pairs])
            matches = [Match(p, float(s)) for p, (_, s) in zip(products, pairs, strict=True)
                       if category is None or p.category == category]
            if prefer:
                order = preference_order([{"category": m.product.category, **m.product.attributes} for m in matches],
                                         prefer)
                matches = [matches[i] for i in order]
        return matches[:k]
