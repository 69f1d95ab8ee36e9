"""Frozen graphs: our export with random weights, and a tiny stand-in for numbpie's original SSD."""

import io
import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import detector
from detector._tf import tf
from detector.anchors import decode, nms
from detector.export import export_graph
from detector.graph import MAX_SIDE, Detector
from detector.model import SSDConfig, build_ssd
from detector.original import FEATURE_MAPS, LOCALISATIONS, NET_SIZE, PREDICTIONS, priors
from numbpie import images
from numbpie.errors import WeightsError

SMALL = SSDConfig(input_size=128, width=0.25)


@pytest.fixture(scope="module")
def small_model():
    """Random weights, with heads spread wide so scores differ clearly between priors."""
    model = build_ssd(SMALL, seed=1)
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if layer.name[:3] in ("cls", "box") and not layer.name.endswith("_flat"):
            kernel, bias = layer.get_weights()
            layer.set_weights([rng.normal(0, 0.1, kernel.shape).astype(np.float32), bias * 0])
    return model


@pytest.fixture(scope="module")
def ours(small_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "detector.pb"
    export_graph(small_model, SMALL, path, min_score=0.05, threshold=0.3)
    return detector.load(path)


def noise(width, height, seed=0):
    return Image.fromarray(
        np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)
    )


def test_import_detector_does_not_import_tensorflow():
    code = "import sys, detector; detector.crops; detector.Detection; print('tensorflow' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_model_outputs_one_row_per_prior(small_model):
    logits, offsets = small_model(np.zeros((2, 128, 128, 3), np.float32))
    assert logits.shape == (2, len(SMALL.priors()), 3) and offsets.shape == (
        2,
        len(SMALL.priors()),
        4,
    )


def test_export_matches_numpy_decode_and_nms(small_model, ours):
    image = noise(200, 150)
    batch = tf.image.resize(np.asarray(image, np.float32)[None], [128, 128], antialias=True)
    logits, offsets = (t.numpy()[0] for t in small_model(batch, training=False))
    probs = tf.nn.softmax(logits).numpy()
    boxes = np.clip(decode(offsets, SMALL.priors()), 0, 1) * [200, 150, 200, 150]
    expected = []
    for label in (1, 2):
        candidates = np.flatnonzero(probs[:, label] >= 0.05)
        for i in candidates[nms(boxes[candidates], probs[candidates, label], 0.45, max_out=20)]:
            expected.append((probs[i, label], label, boxes[i]))
    expected = sorted(expected, key=lambda e: -e[0])[:20]
    found = ours.detect(image, threshold=0.0)
    assert len(found) == len(expected) > 0
    np.testing.assert_allclose([d.score for d in found], [e[0] for e in expected], atol=1e-4)
    np.testing.assert_allclose([d.box for d in found[:3]], [e[2] for e in expected[:3]], atol=0.05)


@pytest.mark.parametrize("size", [(1, 1), (5, 300), (300, 5), (640, 480), (6000, 4000)])
def test_any_image_size_gives_boxes_inside_the_image(ours, size):
    found = ours.detect(noise(*size), threshold=0.0)
    assert found, "random weights still score every prior above 0"
    assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)
    for d in found:
        assert 0 <= d.box[0] <= d.box[2] <= size[0] and 0 <= d.box[1] <= d.box[3] <= size[1]
        assert d.label in ("top", "dress")


@pytest.mark.parametrize(
    "mode, size, fmt",
    [
        ("L", (64, 48), "PNG"),
        ("RGB", (1, 1), "PNG"),
        ("RGBA", (5, 300), "PNG"),
        ("RGB", (6000, 4000), "JPEG"),
    ],
)
def test_uploads_decoded_by_numbpie_images_never_crash(ours, mode, size, fmt):
    buffer = io.BytesIO()
    noise(*size).convert(mode).save(buffer, fmt)
    image = images.decode(buffer.getvalue())
    found = ours.detect(image, threshold=0.0)
    assert found
    for d in found:
        assert 0 <= d.box[0] <= d.box[2] <= image.width and 0 <= d.box[1] <= d.box[3] <= image.height


def fractions_runner(seen):
    """A stand-in network: a top and a dress at fixed fractions of whatever array it is given."""

    def run(array):
        seen.append(array.shape)
        height, width = array.shape[:2]
        boxes = np.array([[0.1, 0.2, 0.5, 0.6], [0.5, 0.5, 1.0, 1.0]]) * [width, height, width, height]
        return boxes, np.array([0.4, 0.8]), np.array([1, 2])

    return run


@pytest.mark.parametrize("size", [(640, 480), (1600, 40), (3200, 2400), (1700, 90), (90, 4000)])
def test_boxes_are_mapped_back_onto_a_photo_that_was_shrunk_first(size):
    seen = []
    found = Detector(fractions_runner(seen), ("background", "top", "dress"), 0.3, "stand-in").detect(
        Image.new("RGB", size)
    )
    width, height = size
    assert max(seen[0][:2]) == min(max(size), MAX_SIDE)  # only photos over MAX_SIDE are shrunk
    assert [(d.label, d.score) for d in found] == [("dress", 0.8), ("top", 0.4)]
    # within the one pixel the shrunk copy's rounding can move a box edge
    np.testing.assert_allclose(found[0].box, [0.5 * width, 0.5 * height, width, height], atol=2.0)
    np.testing.assert_allclose(found[1].box, [0.1 * width, 0.2 * height, 0.5 * width, 0.6 * height], atol=2.0)


def test_a_large_photo_gives_the_boxes_of_its_half_size_copy_doubled(ours):
    pattern = noise(64, 48, seed=4)  # blocks of 50 px (25 px in the copy): shrinking keeps them
    large = pattern.resize((3200, 2400), Image.Resampling.NEAREST)
    half = pattern.resize((1600, 1200), Image.Resampling.NEAREST)
    big, small = ours.detect(large, threshold=0.0), ours.detect(half, threshold=0.0)
    assert len(big) == len(small) >= 3
    assert [d.label for d in big[:3]] == [d.label for d in small[:3]]
    np.testing.assert_allclose([d.score for d in big[:3]], [d.score for d in small[:3]], atol=0.02)
    np.testing.assert_allclose([d.box for d in big[:3]], [np.multiply(d.box, 2) for d in small[:3]], atol=24)


def test_threshold_keeps_exactly_the_boxes_scoring_at_least_it(ours):
    image = noise(64, 48)
    everything = ours.detect(image, threshold=0.0)
    scores = sorted({d.score for d in everything})
    assert len(scores) >= 3
    middle = scores[len(scores) // 2]
    kept = ours.detect(image, threshold=middle)
    assert 0 < len(kept) < len(everything) and kept == [d for d in everything if d.score >= middle]
    assert ours.threshold == 0.3 and ours.detect(image) == [d for d in everything if d.score >= 0.3]
    at_middle = Detector(ours.run, ours.class_names, middle, "the same network, its default at the middle score")
    assert at_middle.detect(image) == kept  # without a threshold, the detector's own
    assert ours.detect(image, threshold=scores[-1] + 1e-6) == []


def test_a_grey_photo_gives_the_boxes_of_its_rgb_copy(ours):
    gray = noise(64, 48).convert("L")
    found = ours.detect(gray, threshold=0.0)
    assert found and found == ours.detect(gray.convert("RGB"), threshold=0.0)


def test_unknown_files_are_clear_errors(tmp_path):
    junk = tmp_path / "junk.pb"
    junk.write_bytes(b"\x00not a graph" * 10)
    with pytest.raises(WeightsError, match="frozen TensorFlow graph|neither"):
        detector.load(junk)
    with pytest.raises(FileNotFoundError, match="valid names"):
        detector.load("no-such-detector")


# --- numbpie's original ssd_person_detector.pb, imitated with constants of the right shapes ---

PLANTED = (2, 3, 6, 1)  # feature map block8 (10x10, 4 anchors), row 3, column 6, anchor 1
PLANTED_OFFSETS = (1.0, -0.5, 0.2, 0.0)


def original_like_graph(path):
    """Placeholder:0 in; the twelve SSD300 output tensors under their original names out."""
    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.uint8, [None, None, 3], name="Placeholder")
        zero = tf.reduce_mean(tf.cast(image, tf.float32)) * 0.0  # ties every output to the input
        for index, (fmap, loc_name, prob_name) in enumerate(
            zip(FEATURE_MAPS, LOCALISATIONS, PREDICTIONS, strict=True)
        ):
            shape = (1, fmap.size, fmap.size, fmap.num_anchors)
            locs = np.zeros(shape + (4,), np.float32)
            probs = np.zeros(shape + (2,), np.float32)
            probs[..., 0] = 1.0
            if index == PLANTED[0]:
                row, col, anchor = PLANTED[1:]
                locs[0, row, col, anchor] = PLANTED_OFFSETS
                probs[0, row, col, anchor] = (0.1, 0.9)
                probs[0, row, col, anchor - 1] = (0.3, 0.7)  # same place, smaller box: NMS drops it
                probs[0, 0, 0, 0] = (0.7, 0.3)  # below the original 0.40 threshold
            for name, value in ((loc_name, locs), (prob_name, probs)):
                scope, op = name[:-2].rsplit("/", 1)
                with tf.compat.v1.name_scope(scope + "/"):
                    tf.reshape(tf.constant(value) + zero, value.shape, name=op)
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return path


def test_original_graph_decodes_a_planted_anchor(tmp_path):
    found = detector.load(original_like_graph(tmp_path / "ssd_person_detector.pb")).detect(
        noise(640, 480)
    )
    assert len(found) == 1 and found[0].label == "person"
    assert found[0].score == pytest.approx(0.9)
    block, row, col, anchor = PLANTED
    assert FEATURE_MAPS[block].step == 32
    cx, cy = (col + 0.5) * 32 / NET_SIZE, (row + 0.5) * 32 / NET_SIZE
    side = math.sqrt(99 * 153) / NET_SIZE  # anchor 1: the square between sizes 99 and 153
    cx, cy = cx + 1.0 * 0.1 * side, cy - 0.5 * 0.1 * side
    width, height = side * math.exp(0.2 * 0.2), side
    expected = [
        (cx - width / 2) * 640,
        (cy - height / 2) * 480,
        (cx + width / 2) * 640,
        (cy + height / 2) * 480,
    ]
    np.testing.assert_allclose(found[0].box, expected, rtol=1e-4)
    first = (
        sum(m.size**2 * m.num_anchors for m in FEATURE_MAPS[:block]) + (row * 10 + col) * 4 + anchor
    )
    np.testing.assert_allclose(priors()[first, 2:], [side, side], rtol=1e-5)


def test_numbpie_eval_detector_prints_map_and_iou_as_json(small_model, tmp_path, capsys):
    import json

    from numbpie.cli import main
    from numbpie.synth import write_dataset

    write_dataset(tmp_path / "data", products=10, street_per_product=1, seed=3, progress=False)
    path = tmp_path / "detector.pb"
    export_graph(small_model, SMALL, path, min_score=0.05, threshold=0.3)
    capsys.readouterr()
    assert main(["eval", "detector", "--data", str(tmp_path / "data"), "--detector", str(path),
                 "--split", "train", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) >= {"map50", "mean_iou"} and 0 <= metrics["map50"] <= 1
    assert metrics["images"] > 0


def test_the_bundled_detector_finds_garments_in_new_street_photos():
    from detector.anchors import iou
    from numbpie.synth import random_spec, render_street

    bundled = detector.load("bundled")
    found = 0
    for n in range(12):
        photo, boxes = render_street(random_spec(70_000 + n), seed=70_000 + n)
        best = bundled.detect(photo)
        found += bool(best) and iou(np.array([best[0].box]), np.array([boxes[0]]))[0, 0] >= 0.5
    assert found >= 10
