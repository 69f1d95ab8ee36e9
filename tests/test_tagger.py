"""The attribute tagger: network shapes, labels, learning, resumable training, export and load."""

from __future__ import annotations

import argparse
import json
import random

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from numbpie import tagger, weights
from numbpie.training import loop
from numbpie.training import tagger as train_tagger
from numbpie.attributes import ATTRIBUTES, PALETTE
from numbpie.synth import write_dataset


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    write_dataset(out, products=12, street_per_product=1, seed=5, progress=False)
    return out


def test_one_head_per_attribute_with_one_logit_per_value():
    outputs = tagger.TaggerNet(widths=(4, 8, 8, 8))(torch.zeros(2, 3, 80, 80))
    assert {name: tuple(out.shape) for name, out in outputs.items()} == \
        {name: (2, len(values)) for name, values in ATTRIBUTES.items()}


def test_label_targets_ignore_what_does_not_apply():
    targets = tagger.label_targets([
        {"category": "top", "sleeve_length": "long", "fit": "loose", "neckline": "v",
         "pattern": "stripes", "color": "navy"},
        {"category": "dress", "sleeve_length": "sleeveless", "fit": "tight", "neckline": "round",
         "length": "knee", "pattern": "solid", "color": "red"},
    ])
    assert targets["length"].tolist() == [tagger.IGNORE, ATTRIBUTES["length"].index("knee")]
    assert targets["category"].tolist() == [0, 1]
    assert targets["color"].tolist() == [ATTRIBUTES["color"].index("navy"), ATTRIBUTES["color"].index("red")]


def test_training_fits_a_handful_of_labelled_views(tiny_world):
    views, labels = train_tagger.labelled_views(tiny_world, "train", 64)
    views, labels = views[:8], labels[:8]
    torch.manual_seed(0)
    model = tagger.TaggerNet(widths=(8, 16, 32, 32)).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = torch.from_numpy(tagger.to_batch(views, 64, tagger.MEAN, tagger.STD))
    targets = tagger.label_targets(labels)
    first = None
    for _ in range(60):
        loss = train_tagger.tagger_loss(model(batch), targets)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1 * first
    fitted = tagger.Tagger(model.eval(), input_size=64)
    assert tagger.accuracy(fitted, views, labels)["color"] == 1.0


def _run(options, lines=None):
    task = train_tagger.TaggerTask(options)
    loop.train(task, options, log=(lines.append if lines is not None else lambda *_: None), progress=False)
    return task


def test_train_resumes_exports_and_loads(tiny_world, tmp_path):
    options = train_tagger.TaggerOptions(data=str(tiny_world), out=str(tmp_path / "run"), input_size=64,
                                         batch_size=8, steps=2, checkpoint_every=1, eval_every=0, threads=1)
    _run(options)
    assert loop.checkpoint_step(tmp_path / "run") == 2
    lines = []
    _run(train_tagger.TaggerOptions(**{**vars(options), "steps": 3}), lines)
    assert lines[0].startswith("resumed")
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert best["step"] in (2, 3) and 0 <= best["product/color"] <= 1 and 0 <= best["score"] <= 1
    loaded = tagger.load(tmp_path / "run" / "best" / "tagger.safetensors")
    assert loaded.input_size == 64  # stored in the file's metadata
    views, _ = train_tagger.labelled_views(tiny_world, "test")
    tags = loaded.tag(views[0])
    assert all(tags[name] in ATTRIBUTES[name] for name in tags)
    assert ("length" in tags) == (tags["category"] == "dress")
    assert set(tags) >= set(ATTRIBUTES) - {"length"}


def test_fresh_products_are_new_garments_with_their_labels():
    import random

    images, labels = train_tagger.fresh_products(random.Random(0), 3, 64)
    again, same = train_tagger.fresh_products(random.Random(0), 3, 64)
    assert [im.size for im in images] == [(80, 80)] * 3 and labels == same
    assert [im.tobytes() for im in images] == [im.tobytes() for im in again]
    assert all(set(label) >= set(ATTRIBUTES) - {"length"} for label in labels)
    assert all(("length" in label) == (label["category"] == "dress") for label in labels)


def test_fine_tuning_starts_from_the_given_weights(tiny_world, tmp_path):
    base = train_tagger.TaggerOptions(data=str(tiny_world), out=str(tmp_path / "base"), input_size=64,
                                      batch_size=4, steps=1, threads=1)
    _run(base)
    start = tmp_path / "base" / "best" / "tagger.safetensors"
    tuned = train_tagger.TaggerOptions(**{**vars(base), "out": str(tmp_path / "tuned"), "steps": 1, "lr": 0.0,
                                          "fresh": 0.5, "init": str(start)})
    model = _run(tuned).model
    # lr 0: the weights stay the initial ones (BatchNorm statistics aside)
    before = tagger.load(start).model.state_dict()
    assert all(torch.allclose(v.float(), before[k].float(), atol=1e-3)
               for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k)


def test_load_refuses_other_files(tmp_path):
    save_file({"weight": torch.zeros(2)}, tmp_path / "other.safetensors")
    with pytest.raises(weights.WeightsError):
        tagger.load(tmp_path / "other.safetensors")
    (tmp_path / "tagger.pt").write_bytes(b"not safetensors")
    with pytest.raises(weights.WeightsError, match="safetensors"):
        tagger.load(tmp_path / "tagger.pt")


def test_cli_exposes_train_tagger():
    from numbpie.cli import build_parser

    args = build_parser().parse_args(["train-tagger", "--data", "d", "--fresh", "0.25", "--init", "bundled"])
    options = loop.options_from(args, train_tagger.TaggerOptions)
    assert (options.fresh, options.init, options.steps) == (0.25, "bundled", train_tagger.TaggerOptions.steps)


def test_the_bundled_tagger_reads_new_product_shots():
    from numbpie.synth import random_spec, render_product

    specs = [random_spec(90_000 + n) for n in range(16)]
    found = tagger.load("bundled").tag_many([render_product(spec) for spec in specs])
    right = {name: sum(f.get(name) == (s.category if name == "category" else getattr(s, name))
                       for f, s in zip(found, specs, strict=True)) for name in ("category", "pattern", "fit")}
    assert right["category"] >= 15 and right["pattern"] >= 14 and right["fit"] >= 14, right


class PoolFeed:
    """A stand-in for training.feed.Feed: a pool of rendered groups that grows by `grow` groups a call."""

    def __init__(self, groups, grow):
        self.waiting, self.groups, self.grow = list(groups), [], grow

    def collect(self, wait_for=0):
        self.groups += [self.waiting.pop(0) for _ in range(min(self.grow, len(self.waiting)))]
        return len(self.groups)


def test_street_views_come_from_the_renderers_pool_once_it_holds_four_batches(tiny_world, tmp_path):
    from numbpie.training.feed import Product

    red = Image.new("RGB", (40, 60), (200, 0, 0))
    colours = list(PALETTE) * 3
    groups = [[Product(f"f{n}.{k}", f"f{n}", {"category": "top", "color": colours[n]}, red, [red, red])
               for k in range(2)] for n in range(40)]
    options = train_tagger.TaggerOptions(data=str(tiny_world), out=str(tmp_path / "t"), input_size=64,
                                         batch_size=8, street=0.5, threads=1)
    task = train_tagger.TaggerTask(options, PoolFeed(groups, grow=10))
    rng = random.Random(0)
    assert task._street_views(rng) == ([], [])  # 10 groups: under 4 batches' worth of 4 views
    images, tags = task._street_views(rng)  # 20 groups
    assert len(images) == len(tags) == 4 and all(image is red for image in images)
    assert all(any(t is p.tags for group in groups[:20] for p in group) for t in tags)  # from the pool so far
    assert "loss" in task.train_step(1)
    assert train_tagger.TaggerTask(options)._street_views(rng) == ([], [])  # no renderer, no street views


def test_a_deeper_tagger_starts_from_a_shallower_ones_stages_and_loads_with_its_own_depth(tiny_world, tmp_path):
    base = train_tagger.TaggerOptions(data=str(tiny_world), out=str(tmp_path / "base"), input_size=64,
                                      batch_size=4, steps=1, threads=1, widths="8,8,16,16")
    _run(base)
    start = tmp_path / "base" / "best" / "tagger.safetensors"
    deeper = train_tagger.TaggerOptions(**{**vars(base), "out": str(tmp_path / "deeper"), "lr": 0.0,
                                           "init": str(start), "widths": "8,8,16,16,32"})
    model = _run(deeper).model
    before = tagger.load(start).model.state_dict()
    after = model.state_dict()
    assert torch.allclose(after["trunk.3.3.weight"].float(), before["trunk.3.3.weight"].float(), atol=1e-3)
    assert after["heads.color.weight"].shape == (len(PALETTE), 32)  # fresh heads on the new, wider stage
    loaded = tagger.load(tmp_path / "deeper" / "best" / "tagger.safetensors")
    assert tagger.stage_widths(loaded.model.state_dict()) == (8, 8, 16, 16, 32)
    assert json.loads((tmp_path / "deeper" / "checkpoint.json").read_text())["fixed"]["widths"] == [8, 8, 16, 16, 32]


def test_init_refuses_a_tagger_with_another_first_stage(tiny_world, tmp_path):
    base = train_tagger.TaggerOptions(data=str(tiny_world), out=str(tmp_path / "base"), input_size=64,
                                      batch_size=4, steps=1, threads=1, widths="8,8,16,16")
    _run(base)
    other = train_tagger.TaggerOptions(**{**vars(base), "out": str(tmp_path / "other"), "widths": "4,8,16,16",
                                          "init": str(tmp_path / "base" / "best" / "tagger.safetensors")})
    with pytest.raises(weights.WeightsError, match="first stage"):
        _run(other)


def test_street_like_fresh_shots_are_small_camera_degraded_and_keep_their_labels():
    images, labels = train_tagger.fresh_products(random.Random(1), 4, 64, camera=1.0)
    again, same = train_tagger.fresh_products(random.Random(1), 4, 64, camera=1.0)
    clean, clean_labels = train_tagger.fresh_products(random.Random(1), 4, 64, camera=0.0)
    assert labels == same == clean_labels  # the camera changes the pixels, never the tags
    assert [im.tobytes() for im in images] == [im.tobytes() for im in again]
    assert all(64 <= max(im.size) <= 160 for im in images)
    assert all(im.size == (80, 80) for im in clean)
    # sensor noise and JPEG: the backdrop of a product shot is far less smooth than in the clean shot
    corner = [np.asarray(im)[:8, :8].reshape(-1, 3).std(axis=0).max() for im in images]
    assert min(corner) > 1.0 and max(np.asarray(im)[:8, :8].reshape(-1, 3).std(axis=0).max() for im in clean) < 1.0
