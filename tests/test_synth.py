"""Tests for numbpie.synth: determinism, paired edits, boxes, dataset files and splits."""

import argparse
import dataclasses
import json
import sqlite3

import numpy as np
import pytest

from numbpie.attributes import ATTRIBUTES, validate_tags
from numbpie.synth import (
    garment_mask,
    model_regions,
    product_regions,
    random_spec,
    render_model,
    render_product,
    render_street,
    split_ids,
    street_scene,
    write_dataset,
)
from numbpie.synth.cli import add_arguments, main

EDITED = ("sleeve_length", "fit", "neckline", "length", "pattern", "color")
VIEWS = {"product": (render_product, product_regions), "model": (render_model, model_regions)}


def _pixels(image) -> np.ndarray:
    return np.asarray(image, np.int16)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(radius):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def test_random_spec_is_deterministic_and_uses_the_vocabulary():
    for seed in range(40):
        spec = random_spec(seed)
        assert spec == random_spec(seed)
        validate_tags(spec.attributes)
        assert ("length" in spec.attributes) == (spec.category == "dress")
        assert "color" in spec.attributes
    assert {random_spec(s).category for s in range(40)} == set(ATTRIBUTES["category"])
    forced = random_spec(7, "dress")
    assert forced.category == "dress"
    assert dataclasses.replace(random_spec(7, "top"), category="dress") == forced
    with pytest.raises(ValueError, match="valid categories"):
        random_spec(1, "shoe")


@pytest.mark.parametrize("render", [render_product, render_model])
def test_renders_are_deterministic_rgb_and_seed_dependent(render):
    first = render(random_spec(3), size=96)
    assert first.mode == "RGB" and first.size == (96, 96)
    assert np.array_equal(_pixels(first), _pixels(render(random_spec(3), size=96)))
    assert not np.array_equal(_pixels(first), _pixels(render(random_spec(4), size=96)))


@pytest.mark.parametrize("view", sorted(VIEWS))
@pytest.mark.parametrize("attribute", EDITED)
def test_each_edit_changes_only_its_own_region(view, attribute):
    render, regions = VIEWS[view]
    for seed in (11, 12):
        spec = random_spec(seed, "dress")
        before = _pixels(render(spec, size=128))
        before_regions = regions(spec, size=128)
        for value in ATTRIBUTES[attribute]:
            if value == getattr(spec, attribute):
                continue
            edited = dataclasses.replace(spec, **{attribute: value})
            changed = (before != _pixels(render(edited, size=128))).any(axis=2)
            allowed = _dilate(before_regions[attribute] | regions(edited, size=128)[attribute], 2)
            assert changed.sum() > 20, f"{attribute} -> {value} is not visible"
            assert not (changed & ~allowed).any(), (
                f"{attribute} -> {value} changed pixels outside its region"
            )


def test_length_does_not_change_a_top():
    spec = random_spec(5, "top")
    short = dataclasses.replace(spec, length="short")
    assert np.array_equal(
        _pixels(render_product(short, 96)),
        _pixels(render_product(dataclasses.replace(short, length="long"), 96)),
    )
    assert "length" not in spec.attributes


def test_garment_mask_covers_the_garment_not_the_background():
    for seed in range(6):
        spec = random_spec(seed)
        mask = garment_mask(spec, size=128)
        assert mask.shape == (128, 128) and mask.dtype == bool
        assert 0.08 < mask.mean() < 0.7
        assert not mask[0, 0] and not mask[-1, -1] and mask[64, 64]
        assert not (mask & ~product_regions(spec, size=128)["garment"]).any()


@pytest.mark.parametrize("seed", range(5))
def test_street_boxes_contain_their_garments(seed):
    spec, other = random_spec(seed), random_spec(seed + 100)
    others = (other,) if seed % 2 else ()
    image, boxes, masks = street_scene(spec, seed, (320, 240), others)
    assert image.size == (320, 240) and len(boxes) == len(masks) == 1 + len(others)
    for (x0, y0, x1, y1), mask in zip(boxes, masks, strict=True):
        assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 240
        ys, xs = np.nonzero(mask > 0.5)
        assert len(xs) > 0
        assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1
    again, again_boxes = render_street(spec, seed, (320, 240), others)
    assert np.array_equal(_pixels(image), _pixels(again)) and again_boxes == boxes


def test_split_ids_are_disjoint_and_cover_everything():
    for n in (1, 2, 3, 10, 37, 200):
        ids = list(range(1, n + 1))
        splits = split_ids(ids, seed=n)
        seen = [i for part in splits.values() for i in part]
        assert sorted(seen) == ids
        assert len(splits["train"]) >= 0.7 * n - 1
    assert split_ids(list(range(1, 50)), 1) != split_ids(list(range(1, 50)), 2)


def _files(root):
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_write_dataset_is_byte_identical_and_consistent(tmp_path):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--out",
            str(tmp_path / "a"),
            "--products",
            "5",
            "--street-per-product",
            "1",
            "--seed",
            "4",
            "--no-progress",
        ]
    )
    assert main(args) == 0
    summary = write_dataset(
        tmp_path / "b", products=5, street_per_product=1, seed=4, progress=False
    )
    assert summary["products"] == 5 and summary["street"] == 5
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert first == second
    assert {name.split("/")[0] for name in first} == {
        "products",
        "models",
        "street",
        "catalog.sqlite",
        "street.json",
        "splits.json",
    }

    splits = json.loads(first["splits.json"])
    assert sorted(i for part in splits.values() for i in part) == [1, 2, 3, 4, 5]
    split_of = {i: name for name, ids in splits.items() for i in ids}

    rows = (
        sqlite3.connect(tmp_path / "a" / "catalog.sqlite")
        .execute("SELECT id, image, title, category, attributes, metadata FROM products")
        .fetchall()
    )
    assert [row[0] for row in rows] == [1, 2, 3, 4, 5]
    for pid, image, title, category, attributes, metadata in rows:
        spec = random_spec(json.loads(metadata)["seed"])
        assert image == f"products/{pid}.png" and f"products/{pid}.png" in first
        assert json.loads(attributes) == spec.attributes and category == spec.category
        assert spec.category in title and json.loads(metadata)["split"] == split_of[pid]

    coco = json.loads(first["street.json"])
    assert {c["name"] for c in coco["categories"]} == {"top", "dress"}
    files = {im["id"]: im for im in coco["images"]}
    for im in coco["images"]:
        assert im["file_name"] in first and im["file_name"].startswith(
            f"street/{im['product_id']}_"
        )
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        image = files[ann["image_id"]]
        assert w > 0 and h > 0 and x + w <= image["width"] and y + h <= image["height"]
        assert split_of[ann["product_id"]] == split_of[image["product_id"]]
