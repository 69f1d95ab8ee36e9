import numpy as np
import pytest
from PIL import Image

from numbpie.evaluate import average_precision, crop_with_margin, retrieval_metrics


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


def test_crop_with_margin_grows_and_clips():
    image = Image.new("RGB", (100, 100))
    assert crop_with_margin(image, (20, 20, 40, 60), 0.1).size == (24, 48)
    assert crop_with_margin(image, (0, 0, 100, 100), 0.5).size == (100, 100)


def test_chunked_recall_matches_the_full_ranking():
    rng = np.random.default_rng(3)
    xb = rng.normal(size=(40, 6)).astype(np.float32)
    labels = rng.integers(0, 12, 40)
    xq = rng.normal(size=(25, 6)).astype(np.float32)
    q_labels = rng.integers(0, 12, 25)
    from numbpie.evaluate import recall_at_k

    chunked = recall_at_k(xq, q_labels, xb, labels, ks=(1, 5, 10), chunk=7)
    assert chunked == pytest.approx({k: v for k, v in retrieval_metrics(xq, q_labels, xb, labels).items()
                                     if k != "map"})


def make_inshop(root, items: int = 4):
    """A tiny DeepFashion In-shop tree: per item one query and two gallery photos (one is a copy)."""
    rows = []
    for n in range(items):
        folder = root / "img" / "WOMEN" / "Dresses" / f"id_{n:08d}"
        folder.mkdir(parents=True)
        pictures = [Image.new("RGB", (64, 96), (60 * n, 255 - 60 * n, (90 * n) % 256)) for _ in range(2)]
        pictures[1].paste((255, 255, 255), (10, 10, 40, 50 + 5 * n))
        pictures[0].save(folder / "01_1_front.jpg", quality=95)
        pictures[0].save(folder / "01_2_side.jpg", quality=95)
        pictures[1].save(folder / "02_1_front.jpg", quality=95)
        name = f"img/WOMEN/Dresses/id_{n:08d}"
        rows += [f"{name}/01_1_front.jpg id_{n:08d} query", f"{name}/01_2_side.jpg id_{n:08d} gallery",
                 f"{name}/02_1_front.jpg id_{n:08d} gallery"]
    (root / "Eval").mkdir()
    (root / "Eval" / "list_eval_partition.txt").write_text(
        f"{len(rows)}\nimage_name item_id evaluation_status\n" + "\n".join(rows) + "\n")
    return root


def test_inshop_layout_is_read_and_evaluated(tmp_path, capsys):
    from numbpie.cli import main
    from numbpie.evaluate import read_inshop_partition

    root = make_inshop(tmp_path / "inshop")
    split = read_inshop_partition(root)
    assert len(split["query"]) == 4 and len(split["gallery"]) == 8
    assert split["query"][0] == (root / "img/WOMEN/Dresses/id_00000000/01_1_front.jpg", "id_00000000")
    assert main(["eval", "inshop", "--root", str(root), "--embedder", "random", "--json"]) == 0
    import json

    metrics = json.loads(capsys.readouterr().out)
    assert metrics["recall@1"] == 1.0 and metrics["queries"] == 4 and metrics["gallery"] == 8  # each query's copy


def test_inshop_errors_are_clear(tmp_path, capsys):
    from numbpie.cli import main

    assert main(["eval", "inshop", "--root", str(tmp_path), "--embedder", "random"]) == 2
    assert "list_eval_partition.txt is missing" in capsys.readouterr().err
    assert main(["eval", "inshop", "--embedder", "random"]) == 2
    assert "needs --root" in capsys.readouterr().err
