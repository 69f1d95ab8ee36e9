"""Two training steps on a tiny generated street set, checkpoint, resume and export."""

import json

import numpy as np
import pytest
from PIL import Image

import detector
from detector._tf import tf
from detector.dataset import augment, load_coco, targets
from detector.evaluate import evaluate
from detector.graph import read_graph_def
from detector.model import SSDConfig
from detector.train import build_parser, train
from numbpie.errors import TrainingError


def weights_in(path):
    """Shape and rounded sum of every float constant in a frozen graph."""
    arrays = [
        tf.make_ndarray(node.attr["value"].tensor)
        for node in read_graph_def(path).node
        if node.op == "Const" and node.attr["value"].tensor.dtype == tf.float32.as_datatype_enum
    ]
    return sorted((a.shape, round(float(np.abs(a).sum()), 4)) for a in arrays)


@pytest.fixture(scope="module")
def tiny_street(tmp_path_factory):
    """Six noisy photos with a red 'top' and sometimes a blue 'dress' box, in COCO layout."""
    root = tmp_path_factory.mktemp("street")
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for image_id in range(6):
        pixels = rng.integers(0, 256, (96, 128, 3), np.uint8)
        boxes = [(1, (10 + image_id, 12, 40, 30), (200, 30, 30))]
        if image_id % 2:
            boxes.append((2, (70, 20, 30, 60), (30, 40, 200)))
        for category, (x, y, w, h), colour in boxes:
            pixels[y : y + h, x : x + w] = colour
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        Image.fromarray(pixels).save(root / f"{image_id}.png")
        images.append({"id": image_id, "file_name": f"{image_id}.png", "width": 128, "height": 96})
    categories = [{"id": 1, "name": "top"}, {"id": 2, "name": "dress"}]
    (root / "street.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    return root


def test_coco_boxes_become_corners_with_class_ids(tiny_street):
    samples = load_coco(tiny_street / "street.json", SSDConfig().class_names)
    assert len(samples) == 6
    np.testing.assert_allclose(samples[1].boxes, [[11, 12, 51, 42], [70, 20, 100, 80]])
    assert samples[1].labels.tolist() == [1, 2]


def test_split_field_selects_images(tmp_path):
    images = [
        {"id": i, "file_name": f"{i}.jpg", "split": s}
        for i, s in enumerate(["train", "test", "train"])
    ]
    annotations = [
        {"id": i, "image_id": i, "category_id": 2, "bbox": [i, 0, 5, 5]} for i in range(3)
    ]
    coco = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 2, "name": "dress"}],
    }
    (tmp_path / "street.json").write_text(json.dumps(coco))
    train_set = load_coco(tmp_path / "street.json", ("background", "top", "dress"), "train")
    assert [s.path.name for s in train_set] == ["0.jpg", "2.jpg"]
    assert train_set[1].boxes.tolist() == [[2, 0, 7, 5]] and train_set[1].labels.tolist() == [2]
    with pytest.raises(ValueError, match="no images in split"):
        load_coco(tmp_path / "street.json", ("background", "top", "dress"), "val")


def test_augment_keeps_boxes_on_their_pixels(tiny_street):
    sample = load_coco(tiny_street / "street.json", SSDConfig().class_names)[0]
    image = Image.open(sample.path).convert("RGB")
    for seed in range(10):
        moved, boxes, labels = augment(
            image, sample.boxes, sample.labels, np.random.default_rng(seed)
        )
        assert len(boxes) == len(labels) == 1
        x0, y0, x1, y1 = boxes[0].round().astype(int)
        patch = np.asarray(moved, np.int32)[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2]
        # the red top may be recoloured by jitter or greyscale, but stays uniform
        assert patch.size and patch.std(axis=(0, 1)).max() < 3


def test_targets_mark_priors_of_each_box(tiny_street):
    config = SSDConfig(input_size=128, width=0.25)
    sample = load_coco(tiny_street / "street.json", config.class_names)[1]
    labels, offsets = targets(sample.boxes, sample.labels, (128, 96), config.priors())
    assert {1, 2} <= set(labels.tolist())
    assert np.isfinite(offsets).all()


def test_two_steps_checkpoint_resume_and_export(tiny_street, tmp_path):
    out = tmp_path / "run"
    common = ["--data", str(tiny_street), "--out", str(out), "--batch-size", "3", "--input-size", "128",
              "--width", "0.25", "--checkpoint-every", "1", "--val-split", ""]
    result = train(build_parser().parse_args([*common, "--steps", "2"]))
    assert result["steps"] == 2 and np.isfinite(result["last_loss"])
    saved = json.loads((out / "checkpoint.json").read_text())
    assert saved["step"] == 2 and saved["fixed"] == {"input_size": 128, "width": 0.25}
    assert (out / "best" / "detector.pb").is_file()  # validated at the end of the run
    # a rerun resumes by itself; at its end it restores the very same weights
    again = train(build_parser().parse_args([*common, "--steps", "2", "--export", "same.pb"]))
    assert again["first_loss"] is None  # nothing left to train
    assert weights_in(out / "same.pb") == weights_in(out / "detector.pb")
    resumed = train(build_parser().parse_args([*common, "--steps", "3", "--export", "again.pb"]))
    assert resumed["steps"] == 3 and np.isfinite(resumed["first_loss"])
    assert weights_in(out / "again.pb") != weights_in(out / "detector.pb")
    with pytest.raises(TrainingError, match="width=0.25"):
        train(build_parser().parse_args([*common, "--steps", "4", "--width", "0.5"]))
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [row["step"] for row in history] == [2, 3]  # the run with nothing left to train adds none
    assert all(0.0 <= row["map50"] <= 1.0 and row["score"] == row["map50"] for row in history)
    scores = evaluate(detector.load(out / "again.pb"), tiny_street, split=None)
    assert scores["images"] == 6 and 0.0 <= scores["map50"] <= 1.0 and 0.0 <= scores["mean_iou"] <= 1.0


def test_a_run_starts_from_the_weights_of_a_frozen_export(tiny_street, tmp_path, capsys):
    from detector.export import export_graph
    from detector.train import DetectorTask

    common = ["--data", str(tiny_street), "--batch-size", "3", "--input-size", "128", "--width", "0.25",
              "--val-split", "", "--export", "detector.pb"]
    train(build_parser().parse_args([*common, "--out", str(tmp_path / "first"), "--steps", "1"]))
    exported = tmp_path / "first" / "detector.pb"
    task = DetectorTask(build_parser().parse_args([*common, "--out", str(tmp_path / "second")]))
    assert weights_in(export_graph(task.model, task.config, tmp_path / "fresh.pb")) != weights_in(exported)
    task.init_from(str(exported))
    assert weights_in(export_graph(task.model, task.config, tmp_path / "seeded.pb")) == weights_in(exported)
    wider = DetectorTask(build_parser().parse_args([*common, "--out", str(tmp_path / "third"), "--width", "0.5"]))
    with pytest.raises(TrainingError, match="pass --input-size 128 --width 0.25"):
        wider.init_from(str(exported))
    # through the command line: a run folder without a checkpoint starts from --init
    seeded = train(build_parser().parse_args([*common, "--out", str(tmp_path / "fourth"), "--steps", "1",
                                              "--init", str(exported)]))
    assert seeded["steps"] == 1 and np.isfinite(seeded["first_loss"])
    assert f"started from {exported}" in capsys.readouterr().out


def test_threads_size_tensorflows_pools_in_a_fresh_process(tiny_street, tmp_path):
    import subprocess
    import sys

    command = [sys.executable, "-m", "detector.train", "--data", str(tiny_street), "--out", str(tmp_path / "run"),
               "--steps", "1", "--input-size", "128", "--width", "0.25", "--batch-size", "2", "--val-split", "",
               "--export", "", "--threads", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1])["threads"] == 1
