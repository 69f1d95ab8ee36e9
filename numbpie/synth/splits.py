"""Readers for a dataset written by `python -m numbpie synth`: its splits, views and street boxes."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from numbpie import images
from numbpie.boxes import crop_around
from numbpie.catalog import Catalog, Product
from numbpie.errors import DatasetError

__all__ = ["split_products", "split_views", "street_queries"]


def split_products(data: str | Path, split: str) -> list[Product]:
    """The catalog products of one split (train, val or test) of a synth dataset, in id order."""
    path = Path(data) / "splits.json"
    if not path.is_file() or not (Path(data) / "catalog.sqlite").is_file():
        raise DatasetError(f"{data} is not a dataset written by python -m numbpie synth (no splits.json or "
                           f"catalog.sqlite); write one with: python -m numbpie synth --out {data}")
    splits = json.loads(path.read_text())
    if split not in splits:
        raise DatasetError(f"{data} has no split {split!r}; its splits are: {', '.join(splits)}.")
    ids = set(splits[split])
    return [p for p in Catalog(Path(data) / "catalog.sqlite") if p.id in ids]


def street_queries(data: str | Path, product_ids: set[int]) -> list[tuple[int, Path, tuple]]:
    """(product id, street photo, ground-truth box) for every street garment of `product_ids`."""
    coco = json.loads((Path(data) / "street.json").read_text())
    files = {image["id"]: image["file_name"] for image in coco["images"]}
    out = []
    for ann in coco["annotations"]:
        if ann["product_id"] in product_ids:
            x, y, w, h = ann["bbox"]
            out.append((ann["product_id"], Path(data) / files[ann["image_id"]], (x, y, x + w, y + h)))
    return out


def split_views(data: str | Path, split: str, size: int, margin: float = 0.2) -> list[tuple[Image.Image, object, str]]:
    """(view, product, kind) for every product, model and street view of the split's products.

    Views are pre-shrunk to about 1.25x `size`; street views are their garment's box grown by `margin`.
    """
    def shrunk(picture: Image.Image) -> Image.Image:
        picture = picture.copy()
        picture.thumbnail((round(size * 1.25), round(size * 1.25)), Image.BILINEAR)
        return picture

    products = {p.id: p for p in split_products(data, split)}
    out = []
    for product in products.values():
        out.append((shrunk(images.load(product.image)), product, "product"))
        if product.metadata.get("model"):
            out.append((shrunk(images.load(Path(data) / product.metadata["model"])), product, "model"))
    for pid, path, box in street_queries(data, set(products)):
        out.append((shrunk(crop_around(images.load(path), box, margin)), products[pid], "street"))
    return out
