"""numbpie.training.embedder: losses, the endless feed, and a short run that resumes and exports."""

import json

import numpy as np
import pytest
import torch

from numbpie import embedder
from numbpie.cli import build_parser
from numbpie.training import loop
from numbpie.training.embedder import EmbedderOptions, EmbedderTask, attribute_loss, info_nce
from numbpie.boxes import iou
from numbpie.training.feed import VARIED, Feed, detector_like, render_group, sibling


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from numbpie.synth import write_dataset

    out = tmp_path_factory.mktemp("synth")
    write_dataset(out, products=10, street_per_product=1, seed=5, progress=False)
    return out


def test_info_nce_prefers_the_matching_shot():
    shots = torch.eye(4, 8)
    right = info_nce(shots * 2, shots, scale=10)
    wrong = info_nce(shots.roll(1, 0), shots, scale=10)
    assert right < 0.01 and wrong > 5


def test_attribute_loss_skips_attributes_that_do_not_apply():
    heads = torch.nn.ModuleDict({"category": torch.nn.Linear(4, 2), "length": torch.nn.Linear(4, 3)})
    features = torch.randn(2, 4)
    tops = attribute_loss(heads, features, [{"category": "top"}, {"category": "top"}])
    expected = torch.nn.functional.cross_entropy(heads["category"](features), torch.tensor([0, 0]))
    assert tops.item() == pytest.approx(expected.item())  # length never applies to a top


def test_a_sibling_differs_in_exactly_one_attribute():
    from numbpie.synth import random_spec

    rng = np.random.default_rng(0)
    for seed in range(20):
        spec = random_spec(seed)
        other = sibling(spec, rng)
        changed = [n for n in VARIED if getattr(spec, n) != getattr(other, n)]
        assert len(changed) == 1 and (changed != ["length"] or spec.category == "dress")


def test_street_crops_are_cut_at_boxes_that_differ_as_a_detectors_do():
    rng = np.random.default_rng(0)
    box = (40.0, 60.0, 140.0, 260.0)
    moved = np.array([detector_like(box, rng) for _ in range(500)])
    shift = np.abs(moved - box) / np.array([100, 200, 100, 200])
    assert shift.max() <= 0.12 and shift.max() > 0.1  # every edge moves, by up to 12% of the box
    assert not np.allclose(moved[:, 0] - box[0], moved[:, 2] - box[2])  # edges move independently
    overlaps = [iou(m, box) for m in moved]
    assert 0.6 < min(overlaps) and 0.7 < np.mean(overlaps) < 0.9


def test_a_rendered_group_is_two_labelled_products_with_views():
    group = render_group(7, side=96)
    assert len(group) == 2 and group[0].group == group[1].group
    differ = [k for k in group[0].tags if group[0].tags[k] != group[1].tags.get(k)]
    assert len(differ) == 1
    for product in group:
        assert max(product.shot.size) <= 96 and product.queries
        assert all(max(q.size) <= 96 for q in product.queries)
    assert render_group(7, side=96)[0].shot.tobytes() == group[0].shot.tobytes()  # seeded


def test_the_feed_fills_its_pool_from_another_process():
    feed = Feed(seed=3, side=64, pool=4)
    try:
        assert feed.collect(wait_for=2) >= 2
        assert all(len(group) == 2 for group in feed.groups)
    finally:
        feed.close()


def test_a_short_run_resumes_validates_and_exports_a_loadable_embedder(tiny_data, tmp_path):
    options = EmbedderOptions(data=str(tiny_data), out=str(tmp_path / "run"), input_size=80, groups=2,
                              steps=2, checkpoint_every=1, eval_every=0, fresh=0.0, precision="fp32")
    loop.train(EmbedderTask(options), options, log=lambda *_: None, progress=False)
    assert loop.checkpoint_step(tmp_path / "run") == 2
    options.steps, options.eval_every = 3, 3
    lines = []
    loop.train(EmbedderTask(options), options, log=lines.append, progress=False)
    assert lines[0].startswith("resumed")
    assert [row["step"] for row in loop.read_history(tmp_path / "run")] == [2, 3]  # each run ends validated
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert best["step"] in (2, 3) and 0 <= best["map"] <= 1 and best["score"] == best["map"]
    loaded = embedder.load(tmp_path / "run" / "best" / "embedder.safetensors")
    assert loaded.input_size == 80  # the preprocessing travels in the file's metadata
    from numbpie.synth import random_spec, render_product

    vectors = loaded.embed([render_product(random_spec(1))])
    assert vectors.shape == (1, 2048) and np.isfinite(vectors).all()


def test_init_bundled_starts_from_the_bundled_backbone(tiny_data, tmp_path):
    options = EmbedderOptions(data=str(tiny_data), out=str(tmp_path), input_size=128, groups=1, fresh=0.0)
    task = EmbedderTask(options)
    task.init_from("bundled")
    bundled = embedder.load("bundled").model.state_dict()
    mine = task.model.state_dict()
    assert all(torch.equal(mine[k].float(), bundled[k].float()) for k in bundled)


def test_the_cli_takes_every_option():
    args = build_parser().parse_args(["train-embedder", "--data", "d", "--groups", "3", "--init", "bundled",
                                      "--precision", "fp32"])
    options = loop.options_from(args, EmbedderOptions)
    assert (options.groups, options.init, options.precision, options.data) == (3, "bundled", "fp32", "d")


def test_shot_queries_search_with_the_product_shot_itself(tiny_data, tmp_path):
    import random

    options = EmbedderOptions(data=str(tiny_data), out=str(tmp_path), input_size=80, groups=1, fresh=0.0,
                              shot_queries=1.0)
    task = EmbedderTask(options)
    product = task.stored[0][0]
    assert task._query_view(product, random.Random(0)) is product.shot
    options.shot_queries = 0.0
    assert all(task._query_view(product, random.Random(n)) in product.queries for n in range(5))
