"""Detection quality: mAP@0.5 and mean IoU on arrays, and a runner over a COCO street split."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

import detector
from detector.anchors import iou
from detector.dataset import load_coco, resolve_annotations
from numbpie.errors import DatasetError

__all__ = ["average_precision", "evaluate", "main", "mean_average_precision", "mean_iou"]

# Per image: predictions are (boxes (N, 4), scores (N,), labels (N,)); truths are (boxes, labels).
Predictions = Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]
Truths = Sequence[tuple[np.ndarray, np.ndarray]]


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision-recall curve with precision made monotone (all-point VOC)."""
    recall = np.concatenate([[0.0], np.asarray(recall, np.float64), [1.0]])
    precision = np.concatenate([[0.0], np.asarray(precision, np.float64), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def _class_hits(predictions: Predictions, truths: Truths, label: int, iou_threshold: float):
    """(scores, is-true-positive) of every prediction of `label`, and the number of truths."""
    scores, hits, total = [], [], 0
    for (boxes, pred_scores, labels), (gt_boxes, gt_labels) in zip(
        predictions, truths, strict=True
    ):
        gt = np.asarray(gt_boxes, np.float64).reshape(-1, 4)[np.asarray(gt_labels) == label]
        total += len(gt)
        mine = np.asarray(labels) == label
        ranked = np.argsort(-np.asarray(pred_scores)[mine], kind="stable")
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)[mine][ranked]
        taken = np.zeros(len(gt), bool)
        overlaps = iou(boxes, gt)
        for row in overlaps:
            free = np.where(taken, -1.0, row)
            best = int(free.argmax()) if len(gt) else -1
            hit = best >= 0 and free[best] >= iou_threshold
            if hit:
                taken[best] = True
            hits.append(hit)
        scores.extend(np.asarray(pred_scores)[mine][ranked])
    return np.asarray(scores, np.float64), np.asarray(hits, bool), total


def mean_average_precision(
    predictions: Predictions, truths: Truths, iou_threshold: float = 0.5
) -> float:
    """Mean over labels present in `truths` of the average precision at `iou_threshold`."""
    labels = sorted({int(v) for _, gt_labels in truths for v in np.asarray(gt_labels).ravel()})
    if not labels:
        raise DatasetError("There are no ground-truth boxes to evaluate against.")
    aps = []
    for label in labels:
        scores, hits, total = _class_hits(predictions, truths, label, iou_threshold)
        order = np.argsort(-scores, kind="stable")
        true_pos = np.cumsum(hits[order])
        recall = true_pos / total
        precision = true_pos / np.arange(1, len(order) + 1)
        aps.append(average_precision(recall, precision))
    return float(np.mean(aps))


def mean_iou(predictions: Predictions, truths: Truths) -> float:
    """Mean over ground-truth boxes of the best IoU with a prediction of the same label (0 if none)."""
    best = []
    for (boxes, _, labels), (gt_boxes, gt_labels) in zip(predictions, truths, strict=True):
        overlaps = iou(np.asarray(gt_boxes).reshape(-1, 4), np.asarray(boxes).reshape(-1, 4))
        same = np.asarray(gt_labels)[:, None] == np.asarray(labels)[None, :]
        overlaps = np.where(same, overlaps, 0.0)
        best.extend(overlaps.max(1) if overlaps.shape[1] else np.zeros(len(overlaps)))
    if not best:
        raise DatasetError("There are no ground-truth boxes to evaluate against.")
    return float(np.mean(best))


def evaluate(
    detector, data: str | Path, split: str | None = "test", limit: int | None = None
) -> dict:
    """{"map50", "mean_iou", "images"} of `detector` on a COCO street split (held-out "test").

    mAP ranks every box down to score 0.05; mean IoU uses the boxes the detector would show.
    """
    class_names = detector.class_names
    samples = load_coco(resolve_annotations(data), class_names, split)[:limit]
    ranked, shown = [], []
    for sample in samples:
        with Image.open(sample.path) as raw:
            image = raw.convert("RGB")
        dets = detector.detect(image, threshold=0.05)
        boxes = np.array([d.box for d in dets], np.float64).reshape(-1, 4)
        scores = np.array([d.score for d in dets], np.float64)
        labels = np.array([class_names.index(d.label) for d in dets], np.int64)
        ranked.append((boxes, scores, labels))
        keep = scores >= detector.threshold
        shown.append((boxes[keep], scores[keep], labels[keep]))
    truths = [(s.boxes, s.labels) for s in samples]
    return {
        "map50": mean_average_precision(ranked, truths),
        "mean_iou": mean_iou(shown, truths),
        "images": len(samples),
    }


def main(argv: list[str] | None = None) -> dict:
    """CLI: `python -m detector.evaluate --detector NAME_OR_PATH --data DIR [--json]`."""
    parser = argparse.ArgumentParser(prog="python -m detector.evaluate", description=main.__doc__)
    parser.add_argument("--detector", default="bundled", help="registered name or path to a .pb")
    parser.add_argument(
        "--data", required=True, help="folder with street.json and its images, or the JSON"
    )
    parser.add_argument("--split", default="test", help="split to score (held-out test by default)")
    parser.add_argument("--limit", type=int, help="evaluate only the first N photos")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    scores = evaluate(detector.load(args.detector), args.data, args.split, args.limit)
    if args.json:
        print(json.dumps(scores))
    else:
        print(
            f"mAP@0.5 {scores['map50']:.4f}  mean IoU {scores['mean_iou']:.4f}  ({scores['images']} photos)"
        )
    return scores


if __name__ == "__main__":
    main()
