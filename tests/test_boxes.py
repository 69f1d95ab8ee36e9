"""Box arithmetic shared by the detector, the pipeline and the evaluations."""

import pytest
from PIL import Image

from numbpie.boxes import crop_around, iou, pad_box


def test_pad_box_grows_by_the_margin_and_stays_inside():
    assert pad_box((20, 20, 40, 60), (100, 100), 0.1) == (18, 16, 42, 64)
    assert pad_box((0, 0, 100, 100), (100, 100), 0.5) == (0, 0, 100, 100)
    assert pad_box((50, 50, 50, 50), (100, 100), 0.1) == (50, 50, 51, 51)  # never empty


def test_crop_around_cuts_the_padded_box():
    image = Image.new("RGB", (100, 100))
    assert crop_around(image, (20, 20, 40, 60), 0.1).size == (24, 48)
    assert crop_around(image, (0, 0, 100, 100), 0.5).size == (100, 100)


def test_iou_by_hand():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
