"""Street photos with boxes in COCO layout, augmentation and SSD targets (numpy and PIL only)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from detector.anchors import encode, match
from numbpie.errors import DatasetError

__all__ = ["Sample", "augment", "batches", "load_coco", "resolve_annotations", "targets"]

MEAN_RGB = (124, 116, 104)  # fill colour when zooming out


@dataclass(frozen=True)
class Sample:
    """One photo: its file, ground-truth corner boxes in pixels (N, 4) and class ids (N,) from 1."""

    path: Path
    boxes: np.ndarray
    labels: np.ndarray


def resolve_annotations(data: str | Path, name: str = "street.json") -> Path:
    """The annotation file: `data` itself when it is a file, else `data/name`."""
    data = Path(data)
    path = data if data.is_file() else data / name
    if not path.is_file():
        raise DatasetError(
            f"No {name} in {data}; write street photos first with python -m numbpie synth --out {data}."
        )
    return path


def load_coco(
    path: str | Path, class_names: tuple[str, ...], split: str | None = None
) -> list[Sample]:
    """Samples from a COCO-style JSON (bbox = [x, y, w, h]); categories are matched by name.

    With `split`, only images whose "split" field equals it (synth writes train/val/test);
    a file without split fields is used whole.
    """
    path = Path(path)
    coco = json.loads(path.read_text())
    if split is not None and any("split" in image for image in coco["images"]):
        coco["images"] = [image for image in coco["images"] if image.get("split") == split]
        if not coco["images"]:
            raise DatasetError(f"{path} has no images in split {split!r}.")
    unknown = {c["name"] for c in coco["categories"]} - set(class_names)
    if unknown:
        raise DatasetError(
            f"{path} has categories {sorted(unknown)}; the detector knows {class_names[1:]}."
        )
    class_of = {c["id"]: class_names.index(c["name"]) for c in coco["categories"]}
    by_image: dict[int, list] = {image["id"]: [] for image in coco["images"]}
    for ann in coco["annotations"]:
        if ann["image_id"] in by_image:
            by_image[ann["image_id"]].append(ann)
    samples = []
    for image in coco["images"]:
        anns = by_image[image["id"]]
        boxes = np.array(
            [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], np.float32
        )
        labels = np.array([class_of[a["category_id"]] for a in anns], np.int32)
        samples.append(Sample(path.parent / image["file_name"], boxes.reshape(-1, 4), labels))
    return samples


def _zoom_out(image: Image.Image, boxes: np.ndarray, rng: np.random.Generator):
    ratio = rng.uniform(1.0, 2.0)
    width, height = image.size
    canvas = Image.new("RGB", (int(width * ratio), int(height * ratio)), MEAN_RGB)
    left = int(rng.integers(0, canvas.width - width + 1))
    top = int(rng.integers(0, canvas.height - height + 1))
    canvas.paste(image, (left, top))
    return canvas, boxes + np.array([left, top, left, top], np.float32)


def _random_crop(image: Image.Image, boxes: np.ndarray, labels: np.ndarray, rng):
    """A crop of 50-100% per side keeping boxes whose centre falls inside it, clipped."""
    width, height = image.size
    crop_w, crop_h = int(width * rng.uniform(0.5, 1.0)), int(height * rng.uniform(0.5, 1.0))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    inside = np.all((centres >= [left, top]) & (centres < [left + crop_w, top + crop_h]), axis=1)
    if len(boxes) and not inside.any():
        return image, boxes, labels  # never crop every garment away
    moved = boxes[inside] - np.array([left, top, left, top], np.float32)
    moved = np.clip(moved, 0, [crop_w, crop_h, crop_w, crop_h]).astype(np.float32)
    return image.crop((left, top, left + crop_w, top + crop_h)), moved, labels[inside]


def _jitter_colour(image: Image.Image, rng) -> Image.Image:
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        image = enhancer(image).enhance(rng.uniform(0.7, 1.3))
    if rng.random() < 0.1:
        image = image.convert("L").convert("RGB")
    return image


def augment(image: Image.Image, boxes: np.ndarray, labels: np.ndarray, rng: np.random.Generator):
    """Random zoom-out, crop, flip and colour change; boxes follow the pixels."""
    if rng.random() < 0.3:
        image, boxes = _zoom_out(image, boxes, rng)
    if rng.random() < 0.5:
        image, boxes, labels = _random_crop(image, boxes, labels, rng)
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        boxes = np.stack(
            [image.width - boxes[:, 2], boxes[:, 1], image.width - boxes[:, 0], boxes[:, 3]], 1
        )
    return _jitter_colour(image, rng), boxes.reshape(-1, 4).astype(np.float32), labels


def targets(boxes: np.ndarray, labels: np.ndarray, image_size, priors: np.ndarray):
    """SSD training targets (labels (P,), offsets (P, 4)) for pixel boxes in an image of `image_size`."""
    width, height = image_size
    normalised = np.asarray(boxes, np.float32).reshape(-1, 4) / np.array(
        [width, height, width, height]
    )
    prior_labels, matched = match(normalised, labels, priors)
    return prior_labels, encode(matched, priors)


def batches(samples: list[Sample], priors: np.ndarray, size: int, batch_size: int, rng, train=True):
    """Endless (images uint8 (B, S, S, 3), labels (B, P), offsets (B, P, 4)) batches."""
    if not samples:
        raise DatasetError("The dataset has no images.")
    batch_size = min(batch_size, len(samples))
    while True:
        order = rng.permutation(len(samples)) if train else np.arange(len(samples))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            images, all_labels, all_offsets = [], [], []
            for index in order[start : start + batch_size]:
                sample = samples[index]
                with Image.open(sample.path) as raw:
                    image = raw.convert("RGB")
                boxes, labels = sample.boxes, sample.labels
                if train:
                    image, boxes, labels = augment(image, boxes, labels, rng)
                prior_labels, offsets = targets(boxes, labels, image.size, priors)
                images.append(np.asarray(image.resize((size, size), Image.Resampling.BILINEAR)))
                all_labels.append(prior_labels)
                all_offsets.append(offsets)
            yield np.stack(images), np.stack(all_labels), np.stack(all_offsets)
