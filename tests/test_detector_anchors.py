"""Pure numpy tests of default boxes, box coding, IoU, matching and NMS."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.anchors import FeatureMap, decode, default_boxes, encode, iou, match, nms, to_center
from detector.original import FEATURE_MAPS, NET_SIZE, priors

# Four priors tiling the unit square: A top-left, B top-right, C bottom-left, D bottom-right.
QUADRANTS = to_center(
    np.array([[0, 0, 0.5, 0.5], [0.5, 0, 1, 0.5], [0, 0.5, 0.5, 1], [0.5, 0.5, 1, 1]])
)


def test_original_ssd300_has_one_prior_per_output_row():
    expected = 38 * 38 * 3 + (19 * 19 + 10 * 10 + 5 * 5) * 4 + (3 * 3 + 1) * 3
    assert priors().shape == (expected, 4)


def test_first_location_of_original_config_worked_by_hand():
    first = priors()[:3] * NET_SIZE
    centre = 0.5 * 8
    np.testing.assert_allclose(first[:, :2], [[centre, centre]] * 3, rtol=1e-5)
    np.testing.assert_allclose(first[0, 2:], [21, 21], rtol=1e-5)
    np.testing.assert_allclose(first[1, 2:], [math.sqrt(21 * 45)] * 2, rtol=1e-5)
    np.testing.assert_allclose(first[2, 2:], [21 * math.sqrt(0.5), 21 / math.sqrt(0.5)], rtol=1e-5)


def test_last_map_of_original_config_is_centred():
    last = priors()[-3:]
    np.testing.assert_allclose(last[:, :2], 0.5, rtol=1e-6)
    assert FEATURE_MAPS[-1].num_anchors == 3


def test_locations_run_row_major_then_anchor():
    fmap = FeatureMap(size=(2, 3), step=(10, 5), sizes=(4,), aspect_ratios=(2.0,))
    boxes = default_boxes([fmap], (20, 15))
    assert boxes.shape == (2 * 3 * 2, 4)
    # second location of the first row: x moves by one step, y stays
    np.testing.assert_allclose(boxes[2, :2], [7.5 / 15, 5 / 20])
    # first location of the second row
    np.testing.assert_allclose(boxes[6, :2], [2.5 / 15, 15 / 20])
    np.testing.assert_allclose(
        boxes[1, 2:], [4 * math.sqrt(2) / 15, 4 / math.sqrt(2) / 20], rtol=1e-6
    )


def test_encode_worked_by_hand():
    prior = np.array([[0.5, 0.5, 0.2, 0.4]])
    box = np.array([[0.42, 0.3, 0.62, 0.7]])  # centre moved right by 0.1 of the prior width
    np.testing.assert_allclose(encode(box, prior), [[1.0, 0.0, 0.0, 0.0]], atol=1e-6)
    wider = np.array([[0.5 - 0.1 * math.e**0.2, 0.3, 0.5 + 0.1 * math.e**0.2, 0.7]])
    np.testing.assert_allclose(encode(wider, prior), [[0.0, 0.0, 1.0, 0.0]], atol=1e-6)


coordinate = st.floats(0.0, 1.0, allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(
    st.tuples(coordinate, coordinate, st.floats(0.01, 1.0), st.floats(0.01, 1.0)),
    st.tuples(coordinate, coordinate, st.floats(0.01, 1.0), st.floats(0.01, 1.0)),
)
def test_decode_inverts_encode(box, prior):
    corners = np.array([[box[0], box[1], box[0] + box[2], box[1] + box[3]]])
    np.testing.assert_allclose(
        decode(encode(corners, np.array([prior])), np.array([prior])), corners, atol=1e-5
    )


def test_iou_worked_by_hand():
    a = np.array([[0, 0, 2, 2], [0, 0, 1, 1]])
    b = np.array([[1, 1, 3, 3], [5, 5, 6, 6], [0, 0, 2, 2]])
    np.testing.assert_allclose(iou(a, b), [[1 / 7, 0, 1], [0, 0, 0.25]])


def test_iou_of_empty_boxes_is_zero():
    assert iou([[1, 1, 1, 1]], [[1, 1, 1, 1]])[0, 0] == 0.0


def test_match_by_threshold():
    gt = np.array([[0, 0, 0.5, 0.4], [0.4, 0.5, 1, 1]])  # IoU 0.8 with A, 0.833 with D (0.1 with C)
    labels, boxes = match(gt, [1, 2], QUADRANTS, threshold=0.5)
    assert labels.tolist() == [1, 0, 0, 2]
    np.testing.assert_allclose(boxes[[0, 3]], gt)


def test_match_forces_each_ground_truth_onto_its_best_prior():
    gt = np.array([[0.2, 0.2, 0.6, 0.6]])  # IoU 0.28 with A, 0.08 with B and C, 0.03 with D
    labels, boxes = match(gt, [2], QUADRANTS, threshold=0.5)
    assert labels.tolist() == [2, 0, 0, 0]
    np.testing.assert_allclose(boxes[0], gt[0])


def test_match_without_ground_truth_is_all_background():
    labels, boxes = match(np.zeros((0, 4)), np.zeros(0), QUADRANTS)
    assert labels.tolist() == [0, 0, 0, 0] and boxes.shape == (4, 4)


def test_nms_worked_by_hand():
    boxes = np.array([[0, 0, 1, 1], [0, 0, 1, 0.9], [2, 2, 3, 3], [0, 0.5, 1, 1.5]])
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    assert nms(boxes, scores, 0.45).tolist() == [0, 2, 3]  # IoU 0.9 suppressed, 0.33 kept
    assert nms(boxes, scores, 0.3).tolist() == [0, 2]
    assert nms(boxes[::-1], scores, 0.45, max_out=1).tolist() == [0]
    assert nms(np.zeros((0, 4)), np.zeros(0)).tolist() == []
