"""Retrieval metrics on arrays, checked by hand and against brute force."""

import numpy as np
import pytest

from numbpie.metrics import average_precision, recall_at_k, retrieval_metrics


def test_average_precision_by_hand():
    assert average_precision(np.array([True, False, False])) == 1.0
    assert average_precision(np.array([False, True, False])) == 0.5
    # relevant at ranks 1 and 3: (1/1 + 2/3) / 2
    assert average_precision(np.array([True, False, True])) == pytest.approx(5 / 6)
    assert average_precision(np.array([False, False])) == 0.0


def test_retrieval_metrics_by_hand():
    xb = np.eye(3, dtype=np.float32)  # gallery items 10, 20, 30 on the axes
    xq = np.array([[1, 0.1, 0], [0.2, 0, 1], [0, 0.5, 0.4]], np.float32)
    # query 0 -> 10 first (right); query 1 -> 30 first, 10 second (right is 10: rank 2);
    # query 2 -> 20 first, 30 second (right is 30: rank 2)
    metrics = retrieval_metrics(xq, [10, 10, 30], xb, [10, 20, 30], ks=(1, 2))
    assert metrics["recall@1"] == pytest.approx(1 / 3)
    assert metrics["recall@2"] == 1.0
    assert metrics["map"] == pytest.approx((1 + 0.5 + 0.5) / 3)


def test_metrics_against_brute_force_on_random_data():
    rng = np.random.default_rng(0)
    xb = rng.normal(size=(50, 8)).astype(np.float32)
    labels = np.arange(50)
    picks = rng.integers(0, 50, 30)
    xq = xb[picks] + rng.normal(scale=0.8, size=(30, 8)).astype(np.float32)
    metrics = retrieval_metrics(xq, picks, xb, labels, ks=(1, 5))
    nq = xq / np.linalg.norm(xq, axis=1, keepdims=True)
    nb = xb / np.linalg.norm(xb, axis=1, keepdims=True)
    sims = nq @ nb.T
    ranks = [(sims[i] > sims[i, picks[i]]).sum() for i in range(30)]
    assert metrics["recall@1"] == pytest.approx(np.mean([r < 1 for r in ranks]))
    assert metrics["recall@5"] == pytest.approx(np.mean([r < 5 for r in ranks]))
    assert metrics["map"] == pytest.approx(np.mean([1 / (r + 1) for r in ranks]), abs=1e-6)


def test_chunked_recall_matches_the_full_ranking():
    rng = np.random.default_rng(3)
    xb = rng.normal(size=(40, 6)).astype(np.float32)
    labels = rng.integers(0, 12, 40)
    xq = rng.normal(size=(25, 6)).astype(np.float32)
    q_labels = rng.integers(0, 12, 25)
    chunked = recall_at_k(xq, q_labels, xb, labels, ks=(1, 5, 10), chunk=7)
    assert chunked == pytest.approx({k: v for k, v in retrieval_metrics(xq, q_labels, xb, labels).items()
                                     if k != "map"})
