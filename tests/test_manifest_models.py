"""Every model in weights/manifest.json that is on this machine loads by name and runs on a small input.

timm's registry test, for our manifest: each present entry gives finite output of the shape its entry
records; an entry whose file is missing (a real asset that scripts/download_data.sh fetches) is a clear
error that names the command to get it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from numbpie import weights
from numbpie.attributes import ATTRIBUTES

MODEL_KINDS = ("embedder", "detector", "tagger", "gan")


def _present(item: dict) -> bool:
    return "file" not in item or any(path.is_file() for path in weights._candidates(item))


ENTRIES = sorted(key for key, item in weights.manifest()["assets"].items() if item["kind"] in MODEL_KINDS)
PRESENT = [key for key in ENTRIES if _present(weights.manifest()["assets"][key])]


def photo(size=(72, 96), seed=0) -> Image.Image:
    """A small garment-like picture: a coloured block on a light background, with noise."""
    rng = np.random.default_rng(seed)
    pixels = np.full((size[1], size[0], 3), 235, np.uint8)
    pixels[size[1] // 5: -size[1] // 6, size[0] // 4: -size[0] // 4] = (180, 40, 60)
    pixels = np.clip(pixels + rng.integers(-12, 13, pixels.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def test_the_bundled_models_are_all_present():
    """The files a fresh clone ships (so this file's tests run over them, not over nothing)."""
    assert {"embedder/bundled", "embedder/random", "detector/bundled", "tagger/bundled", "gan/stargan",
            "gan/pattern", "gan/pix2pix"} <= set(PRESENT)


@pytest.mark.parametrize("key", [k for k in PRESENT if weights.manifest()["assets"][k].get("file")])
def test_a_present_file_matches_its_recorded_size_and_sha256(key):
    kind, name = key.split("/", 1)
    path, item = weights.resolve(kind, name)
    assert path.stat().st_size == item["size"]
    assert item["sha256"] is None or weights.sha256(path) == item["sha256"]


def _run_embedder(name: str, item: dict) -> None:
    from numbpie import embedder

    model = embedder.load(name, batch_size=2, precision="fp32")
    assert model.input_size == item["input_size"] and model.mean == tuple(item["mean"])
    vectors = model.embed([photo(), photo((50, 40), seed=1)])
    assert vectors.shape == (2, embedder.DIM) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert abs(float(vectors[0] @ vectors[1])) < 0.9999  # two different pictures, two different vectors


def _run_detector(name: str, item: dict) -> None:
    import detector

    model = detector.load(name)
    assert model.class_names == tuple(item["classes"]) and model.threshold == item["threshold"]
    image = photo((item["input_size"], item["input_size"] + 40))
    found = model.detect(image, threshold=0.0)
    assert found, "at threshold 0 a detector returns its best boxes"
    for d in found:
        assert np.isfinite(d.box).all() and 0.0 <= d.score <= 1.0 and d.label in item["classes"][1:]
        assert 0 <= d.box[0] <= d.box[2] <= image.width and 0 <= d.box[1] <= d.box[3] <= image.height


def _run_tagger(name: str, item: dict) -> None:
    from numbpie import tagger

    model = tagger.load(name)
    assert model.input_size == item["input_size"]
    [probabilities] = model.probabilities([photo()])
    assert set(probabilities) == set(ATTRIBUTES)
    for attribute, probs in probabilities.items():
        assert list(probs) == list(ATTRIBUTES[attribute])
        assert np.isfinite(list(probs.values())).all() and sum(probs.values()) == pytest.approx(1.0, abs=1e-4)
    assert model.tag(photo())["category"] in ATTRIBUTES["category"]


def _run_gan(name: str, item: dict) -> None:
    from gan.loading import load, pattern_editors

    editor = load(name)
    assert editor.image_size == item["image_size"]
    if editor.family == "pattern":  # one network, run as each of its four directions
        for direction in pattern_editors(editor).values():
            _run_editor(direction, item["image_size"])
    else:
        _run_editor(editor, item["image_size"])


def _run_editor(editor, size: int) -> None:
    from gan.editor import to_tensor

    x = to_tensor(photo(), size)
    with torch.inference_mode():
        if editor.family == "stargan":
            assert editor.attributes, "a bundled StarGAN records its label layout"
            y = editor.net(x, editor.label({"category": "dress", **{a: v[0] for a, v in editor.layout}}))
        else:
            y = editor.net(x)
    assert y.shape == (1, 3, size, size) and torch.isfinite(y).all()
    assert float(y.min()) >= -1.0 - 1e-4 and float(y.max()) <= 1.0 + 1e-4  # images in [-1, 1], as to_tensor's
    tags = {attribute: values[-1] for attribute, values in editor.layout} if editor.family == "stargan" else None
    assert editor.apply(photo(), tags).size == photo().size


RUNNERS = {"embedder": _run_embedder, "detector": _run_detector, "tagger": _run_tagger, "gan": _run_gan}


@pytest.mark.parametrize("key", PRESENT)
def test_each_present_model_loads_by_name_and_gives_finite_output_of_its_recorded_shape(key):
    item = weights.manifest()["assets"][key]
    kind, name = key.split("/", 1)
    RUNNERS[kind](name, item)


@pytest.mark.parametrize("key", [k for k in ENTRIES if weights.manifest()["assets"][k].get("file")])
def test_a_model_file_not_on_this_machine_is_a_clear_error_naming_the_download(key, tmp_path, monkeypatch):
    kind, name = key.split("/", 1)
    monkeypatch.setattr(weights, "_candidates", lambda item: [tmp_path / item["file"]])
    with pytest.raises(weights.WeightsError, match=f"not on this machine.*download_data.sh --only {key}$"):
        weights.resolve(kind, name)
