"""Edit quality on held-out synthetic products, judged against the true edited render.

For every editable attribute value, held-out products that do not have it yet are edited
towards it. The tagger judges success (it reads the target value) and preservation (every
other attribute and the colour read as before the edit); the synthetic world renders the
true edited garment for an L1 comparison (gan.prints.true_edit: a pattern edit lays the house
print over the solid garment); an optional search callable measures how many of
the top-5 results carry the requested value, ranked as the page ranks them after an edit
(products carrying the changed tags as the tagger reads them on the edit first) and by
similarity alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from gan import Edit
from gan.prints import true_edit
from numbpie.attributes import ATTRIBUTES, SHAPE_ATTRIBUTES, applies_to, preference_order
from numbpie.embedder import letterbox
from numbpie.errors import DatasetError, EditError
from numbpie.evaluation.retrieval import embed_paths
from numbpie.index import normalize
from numbpie.synth import GarmentSpec, random_spec, render_product
from numbpie.synth.splits import split_products

__all__ = [
    "EDITABLE", "EditCase", "TrueRender", "Unchanged", "edit_cases", "edit_sheet", "evaluate_edits", "gallery_search",
    "l1_distance", "split_specs", "summarise", "supports",
]

EDITABLE = (*SHAPE_ATTRIBUTES, "pattern")


@dataclasses.dataclass(frozen=True)
class EditCase:
    """Edit product `product_id` (with synth `spec`) so that `attribute` becomes `value`."""

    product_id: int
    spec: GarmentSpec
    attribute: str
    value: str

    @property
    def key(self) -> str:
        return f"{self.attribute}={self.value}"


def split_specs(data: str | Path, split: str = "test") -> dict[int, GarmentSpec]:
    """The synth spec of every product of `split`, by product id."""
    return {p.id: random_spec(p.metadata["seed"]) for p in split_products(data, split)}


def edit_cases(data: str | Path, split: str = "test", per_value: int = 8) -> list[EditCase]:
    """Up to `per_value` products of `split` per (attribute, value) that can take the edit."""
    specs = split_specs(data, split)
    cases = []
    for attribute in EDITABLE:
        for value in ATTRIBUTES[attribute]:
            fits = [pid for pid, spec in sorted(specs.items())
                    if applies_to(attribute, spec.category) and getattr(spec, attribute) != value]
            cases += [EditCase(pid, specs[pid], attribute, value) for pid in fits[:per_value]]
    return cases


def supports(editor, attribute: str, value: str, current: dict) -> bool:
    """Whether `editor` holds the generators that set `attribute` to `value` on a garment with `current` tags."""
    return editor.can_edit({attribute: value}, current)


def _current(spec) -> dict[str, str]:
    return {"category": spec.category, **spec.attributes}


def l1_distance(a: Image.Image, b: Image.Image, size: int = 128) -> float:
    """Mean absolute pixel difference in [0, 1] of the two images letterboxed to `size`."""
    x, y = (np.asarray(letterbox(im, size), np.float32) / 255 for im in (a, b))
    return float(np.abs(x - y).mean())


def _judge(case: EditCase, source, edited, truth, tagger, search) -> dict:
    before, after = tagger.tag(source), tagger.tag(edited)
    others = [name for name in before if name != case.attribute]
    row = {
        "success": float(after.get(case.attribute) == case.value),
        "preservation": float(all(after.get(name) == before[name] for name in others)),
        "l1_edit": l1_distance(edited, truth),
        "l1_input": l1_distance(source, truth),
    }
    if search is not None:
        for name, wanted in (("search_top5_match", {case.attribute: case.value}), ("similarity_top5_match", None)):
            top = search(edited, wanted)
            row[name] = float(np.mean([t.get(case.attribute) == case.value for t in top])) if top else 0.0
    return row


def summarise(rows: Sequence[dict], keys: Sequence[str]) -> dict:
    """Overall means (l1_ratio: total edit L1 over total input L1) plus a per-value breakdown."""

    def means(part: Sequence[dict]) -> dict:
        out = {name: float(np.mean([r[name] for r in part]))
               for name in ("success", "preservation", "search_top5_match", "similarity_top5_match")
               if name in part[0]}
        out["l1_ratio"] = float(sum(r["l1_edit"] for r in part) / max(1e-9, sum(r["l1_input"] for r in part)))
        return {**out, "cases": len(part)}

    per_value = {}
    for key in dict.fromkeys(keys):
        per_value[key] = means([r for r, k in zip(rows, keys, strict=True) if k == key])
    return {**means(rows), "per_value": per_value}


def evaluate_edits(data: str | Path, editor, tagger, split: str = "test", per_value: int = 8,
                   search: Callable[[Image.Image], list[dict]] | None = None, progress=None) -> dict:
    """Edit quality over `edit_cases`; `search(image, tags)` returns the top-5 results' attribute dicts.

    `editor` is a gan.StyleEditor or anything with its `edit(image, tags, current=)` and `can_edit(tags, current)`.
    """
    cases = edit_cases(data, split, per_value)
    if not cases:
        raise DatasetError(f"The {split} split of {data} has no products to edit.")
    doable = [c for c in cases if supports(editor, c.attribute, c.value, _current(c.spec))]
    if not doable:
        raise EditError("The editor has none of the generators these edits need.")
    rows = []
    for done, case in enumerate(doable, start=1):
        source = render_product(case.spec)
        truth = true_edit(case.spec, {case.attribute: case.value}, source=source)
        edited = editor.edit(source, {case.attribute: case.value}, current=_current(case.spec)).image
        rows.append(_judge(case, source, edited, truth, tagger, search))
        if progress:
            progress(done, len(doable))
    return {**summarise(rows, [c.key for c in doable]), "skipped": len(cases) - len(doable)}


class Unchanged:
    """The do-nothing editor: the baseline every real editor must beat."""

    has_model_view = False

    def can_edit(self, tags, current) -> bool:
        return True

    def edit(self, image, tags, model_view=False, current=None) -> Edit:
        return Edit(image, [("crop", image)])


class TrueRender:
    """The perfect editor for a split's products: it renders the true edited garment.

    What it scores is the ceiling the judges (tagger, embedder) allow any editor.
    """

    has_model_view = False

    def __init__(self, data: str | Path, split: str = "test"):
        self._specs = {render_product(spec).tobytes(): spec for spec in split_specs(data, split).values()}

    def can_edit(self, tags, current) -> bool:
        return True

    def edit(self, image, tags, model_view=False, current=None) -> Edit:
        spec = self._specs.get(image.convert("RGB").tobytes())
        if spec is None:
            raise ValueError("TrueRender edits only the product shots of the split it was made for.")
        edited = true_edit(spec, dict(tags), source=image.convert("RGB"))
        return Edit(edited, [("crop", image), ("shape", edited)])


def gallery_search(data: str | Path, embedder, split: str = "test", k: int = 5,
                   tagger=None) -> Callable[[Image.Image, dict | None], list[dict]]:
    """A search over the split's product shots that returns the top-k products' tags.

    `search(image, tags)` ranks as `Pipeline` does after an edit to `tags`: products carrying
    the changed attributes as `tagger` reads them on `image` come first; `tags=None` ranks by
    similarity alone.
    """
    products = split_products(data, split)
    gallery = embed_paths(embedder, [p.image for p in products])
    catalog_tags = [{"category": p.category, **p.attributes} for p in products]

    last: list = [None, None]  # the last image and its similarity ranking: each edit is searched twice

    def search(image: Image.Image, tags: dict | None = None) -> list[dict]:
        if last[0] is not image:
            scores = gallery @ normalize(embedder.embed([image]))[0]
            last[:] = image, [catalog_tags[i] for i in np.argsort(-scores, kind="stable")]
        ranked = last[1]
        if tags:
            read = tagger.tag(image) if tagger is not None else {}
            ranked = [ranked[i] for i in preference_order(ranked, {n: read.get(n, v) for n, v in tags.items()})]
        return ranked[:k]

    return search


def _labelled(image: Image.Image, text: str, size: int) -> Image.Image:
    cell = Image.new("RGB", (size, size + 16), (255, 255, 255))
    cell.paste(image.resize((size, size), Image.BILINEAR), (0, 16))
    ImageDraw.Draw(cell).text((3, 2), text, fill=(40, 40, 40))
    return cell


def edit_sheet(data: str | Path, editor, split: str = "test", count: int = 8, size: int = 128) -> Image.Image:
    """`count` held-out products (half tops, half dresses), each edited to every tag value in turn.

    Column one is the product; a value it already has, or one that does not apply, stays blank.
    With a pix2pix generator, the last column is the model view.
    """
    specs = list(split_specs(data, split).values())
    picked = ([s for s in specs if s.category == "top"][: count // 2]
              + [s for s in specs if s.category == "dress"][: count - count // 2])
    columns = [(a, v) for a in EDITABLE for v in ATTRIBUTES[a]]
    model_view = editor.has_model_view
    blank = Image.new("RGB", (size, size), (235, 235, 235))
    cells = []
    for spec in picked:
        source, current = render_product(spec), _current(spec)
        cells.append(_labelled(source, spec.category, size))
        for attribute, value in columns:
            doable = (applies_to(attribute, spec.category) and current.get(attribute) != value
                      and supports(editor, attribute, value, current))
            image = editor.edit(source, {attribute: value}, current=current).image if doable else blank
            cells.append(_labelled(image, f"{attribute.replace('_length', '')}={value}", size))
        if model_view:
            cells.append(_labelled(editor.edit(source, {}, model_view=True, current=current).image, "model view", size))
    width = len(cells) // len(picked)
    sheet = Image.new("RGB", (width * size, len(picked) * (size + 16)), (255, 255, 255))
    for i, cell in enumerate(cells):
        sheet.paste(cell, ((i % width) * size, (i // width) * (size + 16)))
    return sheet
