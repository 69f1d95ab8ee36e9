"""Retrieval metrics: pure functions on arrays (xq queries, xb gallery, labels per row)."""

from __future__ import annotations

import numpy as np

from numbpie.index import normalize

__all__ = ["average_precision", "recall_at_k", "retrieval_metrics", "score_gap"]


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


def score_gap(xq: np.ndarray, q_labels, xb: np.ndarray, b_labels, k: int = 5) -> float:
    """Median of (top-1 score - k-th score) over the queries whose top-1 is correct (nan if none)."""
    sims = normalize(xq) @ normalize(xb).T
    order = np.argsort(-sims, axis=1, kind="stable")
    correct = np.asarray(b_labels)[order[:, 0]] == np.asarray(q_labels)
    ranked = np.take_along_axis(sims, order[:, :k], axis=1)
    gaps = ranked[correct, 0] - ranked[correct, min(k, ranked.shape[1]) - 1]
    return float(np.median(gaps)) if gaps.size else float("nan")


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
