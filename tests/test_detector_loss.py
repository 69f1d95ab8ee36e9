"""The SSD loss on small hand-made tensors."""

import math

import numpy as np
import pytest

from detector._tf import tf
from detector.loss import smooth_l1, ssd_loss


def softplus(x):
    return math.log(1 + math.exp(x))


def example():
    """One positive prior (logits 0, 0) and five background priors of known difficulty."""
    labels = np.array([[1, 0, 0, 0, 0, 0]])
    background_margin = [0.0, 3.0, 1.0, 2.0, -1.0, 0.5]  # logit of the wrong class
    logits = np.array([[[0.0, m] for m in background_margin]], np.float32)
    targets = np.zeros((1, 6, 4), np.float32)
    offsets = np.full((1, 6, 4), 9.0, np.float32)  # negatives' boxes must not count
    offsets[0, 0] = [0.5, 2.0, 0.0, -0.2]
    return labels, targets, logits, offsets


def test_smooth_l1_is_quadratic_then_linear():
    np.testing.assert_allclose(smooth_l1(tf.constant([0.5, -2.0, 1.0])).numpy(), [0.125, 1.5, 0.5])


@pytest.mark.parametrize("ratio, hardest", [(2, [3.0, 2.0]), (3, [3.0, 2.0, 1.0])])
def test_hard_negative_mining_takes_the_hardest_background(ratio, hardest):
    total, cls_loss, loc_loss = ssd_loss(*example(), neg_ratio=ratio)
    expected_cls = math.log(2) + sum(softplus(m) for m in hardest)
    expected_loc = 0.125 + 1.5 + 0.0 + 0.02
    assert float(cls_loss) == pytest.approx(expected_cls, rel=1e-5)
    assert float(loc_loss) == pytest.approx(expected_loc, rel=1e-5)
    assert float(total) == pytest.approx(expected_cls + expected_loc, rel=1e-5)


def test_image_without_garments_still_learns_background():
    labels, targets, logits, offsets = example()
    _, cls_loss, loc_loss = ssd_loss(
        np.zeros_like(labels), targets, logits, offsets, min_negatives=2
    )
    assert float(cls_loss) == pytest.approx(softplus(3.0) + softplus(2.0), rel=1e-5)
    assert float(loc_loss) == 0.0


def test_loss_falls_when_predictions_move_to_the_truth():
    labels, targets, logits, offsets = example()
    better = logits.copy()
    better[0, 0] = [-2.0, 2.0]
    assert float(ssd_loss(labels, targets, better, offsets * 0)[0]) < float(
        ssd_loss(labels, targets, logits, offsets)[0]
    )
