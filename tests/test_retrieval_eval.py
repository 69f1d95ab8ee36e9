"""eval retrieval's breakdowns: garment sizes, the attribute oracle, per-garment detector crops, --gallery all."""

import numpy as np
import pytest
from PIL import Image

from detector import Detection
from numbpie.evaluation.retrieval import best_overlap_crop, evaluate_retrieval, oracle_recall_at_1, size_bucket


def test_size_buckets_follow_the_garment_height():
    assert [size_bucket((0, 0, 10, h)) for h in (10, 63, 64, 95, 96, 128, 191, 192, 400)] == [
        "<64", "<64", "64-96", "64-96", "96-128", "128-192", "128-192", ">=192", ">=192"]


def test_the_oracle_breaks_ties_at_random():
    red = {"category": "top", "color": "red", "fit": "tight"}
    blue = {**red, "color": "blue"}
    assert oracle_recall_at_1([red], [red, blue]) == 1.0
    assert oracle_recall_at_1([red], [red, dict(red), blue]) == 0.5  # two products the labels cannot tell apart
    assert oracle_recall_at_1([red, blue], [red, blue]) == 1.0


def test_each_garment_is_searched_with_the_detection_that_overlaps_it():
    photo = Image.new("RGB", (200, 100))
    left, right = Detection((10, 10, 60, 90), 0.9, "top"), Detection((120, 10, 180, 90), 0.6, "dress")
    # the right garment gets the right box although the left one scores higher
    assert best_overlap_crop(photo, (125, 12, 175, 88), [left, right]).size == best_overlap_crop(
        photo, (120, 10, 180, 90), [right]).size
    crop = best_overlap_crop(photo, (125, 12, 175, 88), [left, right])
    assert crop.size[0] < 100
    assert best_overlap_crop(photo, (100, 0, 110, 5), [left]).size == (200, 100)  # missed: the whole photo


class ColourEmbedder:
    """A stand-in embedder: the mean colour of the centre of the image."""

    def embed(self, images):
        rows = [np.asarray(im.convert("RGB").resize((8, 8)), np.float32)[2:6, 2:6].mean((0, 1)) for im in images]
        rows = np.array(rows) - 128
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from numbpie.synth import write_dataset

    out = tmp_path_factory.mktemp("world")
    write_dataset(out, products=20, street_per_product=1, seed=3, progress=False)
    return out


def test_gallery_all_searches_every_product_and_reports_the_breakdowns(world):
    split = evaluate_retrieval(world, ColourEmbedder(), split="test")
    every = evaluate_retrieval(world, ColourEmbedder(), split="all", gallery="all")
    assert every["gallery"] == 20 and split["gallery"] < 20
    assert every["queries"] >= 20 and split["queries"] < every["queries"]
    assert sum(row["queries"] for row in every["by_size"].values()) == every["queries"]
    assert 0 < every["oracle_recall@1"] <= 1 and 0 <= every["recall@1"] <= 1
    assert every["gap"] >= 0 or np.isnan(every["gap"])
