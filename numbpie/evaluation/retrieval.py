"""Street-to-shop retrieval on a synth dataset: held-out street garments against their product shots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from detector import find_garments
from numbpie import images
from numbpie.boxes import crop_around, iou
from numbpie.metrics import retrieval_metrics, score_gap
from numbpie.synth.splits import split_products, street_queries

__all__ = ["CROPS", "best_overlap_crop", "embed_paths", "evaluate_retrieval", "oracle_recall_at_1", "size_bucket"]

CROPS = ("gt", "detector", "none")  # how a street query is cut from its photo


def embed_paths(embedder, paths: Sequence, batch: int = 32) -> np.ndarray:
    """The embeddings of image files, loaded and embedded `batch` at a time."""
    return np.concatenate([embedder.embed([images.load(p) for p in paths[i:i + batch]])
                           for i in range(0, len(paths), batch)])


SIZES = ((0, 64, "<64"), (64, 96, "64-96"), (96, 128, "96-128"), (128, 192, "128-192"), (192, 10**9, ">=192"))
ORACLE_ATTRIBUTES = ("category", "sleeve_length", "fit", "neckline", "length", "pattern", "color")


def size_bucket(box) -> str:
    """The garment-height bucket of a (x0, y0, x1, y1) box, as the per-size breakdown names it."""
    height = box[3] - box[1]
    return next(name for low, high, name in SIZES if low <= height < high)


def oracle_recall_at_1(query_tags: Sequence[dict], gallery_tags: Sequence[dict]) -> float:
    """Expected Recall@1 of ranking by the number of equal attributes, ties broken at random.

    A perfect reader of the catalog attributes and colour: what the products' labels alone can
    tell apart (the query's own product always has the most matches).
    """
    def matches(a: dict, b: dict) -> int:
        return sum(a.get(name) == b.get(name) for name in ORACLE_ATTRIBUTES)

    out = []
    for tags in query_tags:
        counts = np.array([matches(tags, other) for other in gallery_tags])
        out.append(1.0 / int((counts == counts.max()).sum()))
    return float(np.mean(out))


def best_overlap_crop(photo: Image.Image, box, detections) -> Image.Image:
    """The crop of the detection that overlaps the garment's box best; the whole photo if none does."""
    overlaps = [iou(d.box, box) for d in detections]
    if not overlaps or max(overlaps) == 0:
        return photo
    return crop_around(photo, detections[int(np.argmax(overlaps))].box)


def _products(data: Path, split: str) -> list:
    """The split's products; 'all' is every product of the dataset."""
    if split != "all":
        return split_products(data, split)
    from numbpie.catalog import Catalog

    return list(Catalog(data / "catalog.sqlite"))


def _query_pictures(queries, crop: str, detector) -> list[Image.Image]:
    """Each street garment cut as `crop` says; the detector runs once per photo."""
    found: dict = {}
    out = []
    for _, path, box in queries:
        photo = images.load(path)
        if crop == "gt":
            out.append(crop_around(photo, box))
        elif crop == "none":
            out.append(photo)
        else:
            if path not in found:
                found[path] = find_garments(detector, photo)
            out.append(best_overlap_crop(photo, box, found[path]))
    return out


def _tags(product) -> dict:
    return {"category": product.category, **product.attributes}


def evaluate_retrieval(data: str | Path, embedder, crop: str = "gt", split: str = "test",
                       detector=None, batch: int = 32, gallery: str = "split") -> dict:
    """Street-to-shop metrics: queries are `split` street garments, the gallery their product shots.

    `crop` cuts each query with its ground-truth box, with the detection that overlaps it best
    (`detector`), or not at all; `gallery` 'all' searches every product of the dataset instead
    of the split's. Besides Recall@k and mAP: Recall@1 by garment height, the attribute oracle's
    Recall@1 on the same queries, and the median gap between the top-1 and 5th score of the
    queries whose top-1 is right.
    """
    data = Path(data)
    products = _products(data, split)
    shown = _products(data, "all") if gallery == "all" else products
    xb = embed_paths(embedder, [p.image for p in shown], batch)
    queries = street_queries(data, {p.id for p in products})
    pictures = _query_pictures(queries, crop, detector)
    xq = np.concatenate([embedder.embed(pictures[i:i + batch]) for i in range(0, len(pictures), batch)])
    q_ids, b_ids = np.array([q[0] for q in queries]), np.array([p.id for p in shown])
    metrics = retrieval_metrics(xq, q_ids, xb, b_ids)
    buckets = np.array([size_bucket(box) for _, _, box in queries])
    by_size = {}
    for _, _, name in SIZES:
        mine = buckets == name
        if mine.any():
            by_size[name] = {"recall@1": retrieval_metrics(xq[mine], q_ids[mine], xb, b_ids, ks=(1,))["recall@1"],
                             "queries": int(mine.sum())}
    tags = {p.id: _tags(p) for p in shown}
    return {**metrics, "by_size": by_size, "gap": score_gap(xq, q_ids, xb, b_ids),
            "oracle_recall@1": oracle_recall_at_1([tags[i] for i in q_ids], [tags[i] for i in b_ids]),
            "queries": len(queries), "gallery": len(shown), "crop": crop, "split": split}
