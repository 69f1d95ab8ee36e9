"""Retrieval quality: pure metrics on arrays, and street-to-shop evaluation on a synth dataset."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from numbpie import images
from numbpie.errors import DatasetError
from numbpie.index import normalize

__all__ = [
    "average_precision", "crop_with_margin", "embed_paths", "evaluate_inshop", "evaluate_retrieval",
    "read_inshop_partition", "recall_at_k", "retrieval_metrics", "split_products", "street_queries",
]


def average_precision(ranked_relevant: np.ndarray) -> float:
    """AP of one ranking, given booleans in ranked order (all relevant items must appear)."""
    hits = np.flatnonzero(ranked_relevant)
    if hits.size == 0:
        return 0.0
    return float(np.mean(np.arange(1, hits.size + 1) / (hits + 1)))


def retrieval_metrics(xq: np.ndarray, q_labels, xb: np.ndarray, b_labels, ks=(1, 5, 10)) -> dict:
    """Recall@k (a correct item in the top k) and mAP of cosine ranking queries against a gallery."""
    sims = normalize(xq) @ normalize(xb).T
    order = np.argsort(-sims, axis=1, kind="stable")
    relevant = np.asarray(b_labels)[order] == np.asarray(q_labels)[:, None]
    metrics = {f"recall@{k}": float(relevant[:, :k].any(axis=1).mean()) for k in ks}
    metrics["map"] = float(np.mean([average_precision(row) for row in relevant]))
    return metrics


def crop_with_margin(image: Image.Image, box, margin: float = 0.1) -> Image.Image:
    """`box` (x0, y0, x1, y1) grown by `margin` of its size on every side, clipped to the image."""
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    return image.crop((max(0, round(x0 - dx)), max(0, round(y0 - dy)),
                       min(image.width, round(x1 + dx)), min(image.height, round(y1 + dy))))


def street_queries(data: Path, product_ids: set[int]) -> list[tuple[int, Path, tuple]]:
    """(product id, street photo, ground-truth box) for every street garment of `product_ids`."""
    coco = json.loads((Path(data) / "street.json").read_text())
    files = {image["id"]: image["file_name"] for image in coco["images"]}
    out = []
    for ann in coco["annotations"]:
        if ann["product_id"] in product_ids:
            x, y, w, h = ann["bbox"]
            out.append((ann["product_id"], Path(data) / files[ann["image_id"]], (x, y, x + w, y + h)))
    return out


def _query_crop(photo: Image.Image, box, crop: str, detector) -> Image.Image:
    if crop == "gt":
        return crop_with_margin(photo, box)
    if crop == "none":
        return photo
    import detector as detectors

    return detectors.crops(photo, detector.detect(photo)).crop


def evaluate_retrieval(data: str | Path, embedder, crop: str = "gt", split: str = "test",
                       detector=None, batch: int = 32) -> dict:
    """Street-to-shop metrics: queries are `split` street garments, the gallery their product shots."""
    data = Path(data)
    products = split_products(data, split)
    gallery = embed_paths(embedder, [p.image for p in products], batch)
    queries = street_queries(data, {p.id for p in products})
    pictures = [_query_crop(images.load(path), box, crop, detector) for _, path, box in queries]
    xq = np.concatenate([embedder.embed(pictures[i:i + batch]) for i in range(0, len(pictures), batch)])
    metrics = retrieval_metrics(xq, [q[0] for q in queries], gallery, [p.id for p in products])
    return {**metrics, "queries": len(queries), "gallery": len(products), "crop": crop, "split": split}


def split_products(data: str | Path, split: str) -> list:
    """The catalog products of one split (train, val or test) of a synth dataset, in id order."""
    from numbpie.catalog import Catalog

    ids = set(json.loads((Path(data) / "splits.json").read_text())[split])
    return [p for p in Catalog(Path(data) / "catalog.sqlite") if p.id in ids]


def embed_paths(embedder, paths: Sequence, batch: int = 32) -> np.ndarray:
    """The embeddings of image files, loaded and embedded `batch` at a time."""
    return np.concatenate([embedder.embed([images.load(p) for p in paths[i:i + batch]])
                           for i in range(0, len(paths), batch)])


def recall_at_k(xq: np.ndarray, q_labels, xb: np.ndarray, b_labels, ks=(1, 10, 20), chunk: int = 1024) -> dict:
    """Recall@k of cosine ranking, computed in query chunks so large galleries fit in memory."""
    b_labels, q_labels = np.asarray(b_labels), np.asarray(q_labels)
    xb, top = normalize(xb), min(max(ks), len(b_labels))
    hits = np.zeros((len(q_labels), top), bool)
    for start in range(0, len(q_labels), chunk):
        sims = normalize(xq[start:start + chunk]) @ xb.T
        best = np.argpartition(-sims, top - 1, axis=1)[:, :top]
        order = np.take_along_axis(best, np.argsort(-np.take_along_axis(sims, best, 1), 1, kind="stable"), 1)
        hits[start:start + chunk] = b_labels[order] == q_labels[start:start + chunk, None]
    return {f"recall@{k}": float(hits[:, :k].any(axis=1).mean()) for k in ks}


def read_inshop_partition(root: str | Path) -> dict[str, list[tuple[Path, str]]]:
    """DeepFashion In-shop's Eval/list_eval_partition.txt as {status: [(image path, item id)]}.

    The file's first line is the image count, the second the header
    `image_name item_id evaluation_status`; statuses are train, query and gallery.
    """
    path = Path(root) / "Eval" / "list_eval_partition.txt"
    if not path.is_file():
        raise DatasetError(f"{path} is missing; --root must be the In-shop folder holding Eval/ and img/.")
    lines = path.read_text().splitlines()
    split: dict[str, list[tuple[Path, str]]] = {"train": [], "query": [], "gallery": []}
    for number, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise DatasetError(f"{path}:{number}: expected 'image_name item_id evaluation_status', got {line!r}.")
        name, item, status = parts
        split.setdefault(status, []).append((Path(root) / name, item))
    if not split["query"] or not split["gallery"]:
        raise DatasetError(f"{path} lists no query or no gallery images.")
    return split


def evaluate_inshop(root: str | Path, embedder, ks=(1, 10, 20), batch: int = 32, progress=None) -> dict:
    """In-shop clothes retrieval: every query image ranked against the whole gallery (Recall@k)."""
    split = read_inshop_partition(root)
    paths = [p for p, _ in split["query"]] + [p for p, _ in split["gallery"]]
    vectors = []
    for start in range(0, len(paths), batch):
        vectors.append(embedder.embed([images.load(p) for p in paths[start:start + batch]]))
        if progress:
            progress(min(start + batch, len(paths)), len(paths))
    vectors = np.concatenate(vectors)
    nq = len(split["query"])
    metrics = recall_at_k(vectors[:nq], [i for _, i in split["query"]], vectors[nq:],
                          [i for _, i in split["gallery"]], ks)
    return {**metrics, "queries": nq, "gallery": len(split["gallery"])}
