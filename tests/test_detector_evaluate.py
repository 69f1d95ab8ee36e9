"""mAP@0.5 and mean IoU on hand-worked examples."""

import numpy as np
import pytest

from detector.evaluate import average_precision, mean_average_precision, mean_iou

TRUTH = (np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([1, 1]))


def test_perfect_predictions_score_one():
    preds = [(TRUTH[0], np.array([0.9, 0.8]), np.array([1, 1]))]
    assert mean_average_precision(preds, [TRUTH]) == pytest.approx(1.0)
    assert mean_iou(preds, [TRUTH]) == pytest.approx(1.0)


def test_false_positive_ranked_first_halves_precision_at_first_hit():
    # ranked: miss (0.95), hit (0.9), hit (0.8): precision 0, 1/2, 2/3 at recall 0, .5, 1
    boxes = np.array([[50, 50, 60, 60], [0, 0, 10, 10], [20, 20, 30, 30]])
    preds = [(boxes, np.array([0.95, 0.9, 0.8]), np.array([1, 1, 1]))]
    assert mean_average_precision(preds, [TRUTH]) == pytest.approx(0.5 * 2 / 3 + 0.5 * 2 / 3)


def test_duplicate_boxes_count_once_and_wrong_label_misses():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]])
    preds = [(boxes, np.array([0.9, 0.8, 0.7]), np.array([1, 1, 2]))]
    # label 1: hit, duplicate (false), recall 0.5 -> AP 0.5
    assert mean_average_precision(preds, [TRUTH]) == pytest.approx(0.5)
    # first truth fully covered, second only by a wrong label
    assert mean_iou(preds, [TRUTH]) == pytest.approx(0.5)


def test_mean_over_classes_and_images():
    truths = [
        (np.array([[0, 0, 10, 10]]), np.array([1])),
        (np.array([[0, 0, 10, 10]]), np.array([2])),
    ]
    preds = [
        (np.array([[0, 0, 10, 10]]), np.array([0.9]), np.array([1])),
        (np.array([[0, 0, 10, 5]]), np.array([0.9]), np.array([2])),
    ]  # IoU 0.5 counts
    assert mean_average_precision(preds, truths) == pytest.approx(1.0)
    assert mean_average_precision(preds, truths, iou_threshold=0.6) == pytest.approx(0.5)
    assert mean_iou(preds, truths) == pytest.approx(0.75)


def test_average_precision_makes_precision_monotone():
    assert average_precision([0.5, 0.5, 1.0], [1.0, 0.5, 0.75]) == pytest.approx(0.5 + 0.5 * 0.75)


def test_no_truth_is_a_clear_error():
    with pytest.raises(ValueError, match="ground-truth"):
        mean_average_precision([], [])
