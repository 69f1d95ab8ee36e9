"""DeepFashion In-shop clothes retrieval: every query image ranked against the whole gallery (Recall@k)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from numbpie import images
from numbpie.errors import DatasetError
from numbpie.metrics import recall_at_k

__all__ = ["evaluate_inshop", "read_inshop_partition"]


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
    """Recall@k of every query image against the whole gallery; `progress(done, total)` while embedding."""
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
