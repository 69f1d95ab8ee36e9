"""Street-to-shop retrieval on a synth dataset: held-out street garments against their product shots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from detector import crops
from numbpie import images
from numbpie.boxes import crop_around
from numbpie.metrics import retrieval_metrics
from numbpie.synth.splits import split_products, street_queries

__all__ = ["CROPS", "embed_paths", "evaluate_retrieval"]

CROPS = ("gt", "detector", "none")  # how a street query is cut from its photo


def embed_paths(embedder, paths: Sequence, batch: int = 32) -> np.ndarray:
    """The embeddings of image files, loaded and embedded `batch` at a time."""
    return np.concatenate([embedder.embed([images.load(p) for p in paths[i:i + batch]])
                           for i in range(0, len(paths), batch)])


def _query_crop(photo: Image.Image, box, crop: str, found) -> Image.Image:
    if crop == "gt":
        return crop_around(photo, box)
    if crop == "none":
        return photo
    return crops(photo, found.detect(photo)).crop


def evaluate_retrieval(data: str | Path, embedder, crop: str = "gt", split: str = "test",
                       detector=None, batch: int = 32) -> dict:
    """Street-to-shop metrics: queries are `split` street garments, the gallery their product shots.

    `crop` cuts each query with its ground-truth box, with `detector`, or not at all.
    """
    data = Path(data)
    products = split_products(data, split)
    gallery = embed_paths(embedder, [p.image for p in products], batch)
    queries = street_queries(data, {p.id for p in products})
    pictures = [_query_crop(images.load(path), box, crop, detector) for _, path, box in queries]
    xq = np.concatenate([embedder.embed(pictures[i:i + batch]) for i in range(0, len(pictures), batch)])
    metrics = retrieval_metrics(xq, [q[0] for q in queries], gallery, [p.id for p in products])
    return {**metrics, "queries": len(queries), "gallery": len(products), "crop": crop, "split": split}
