"""The cropping policy, without TensorFlow."""

from PIL import Image

from detector import CropResult, Detection, crops


def photo(width=200, height=100):
    return Image.new("RGB", (width, height), (10, 20, 30))


def test_best_box_is_cropped_with_margin_and_all_boxes_kept():
    small = Detection((100, 50, 120, 60), 0.6, "top")
    best = Detection((40, 20, 80, 60), 0.9, "dress")
    result = crops(photo(), [small, best], margin=0.25)
    assert isinstance(result, CropResult)
    assert result.box == (30, 10, 90, 70)
    assert result.crop.size == (60, 60)
    assert result.detection == best and result.detections == (best, small)
    assert not result.whole_image


def test_margin_stays_inside_the_image():
    result = crops(photo(), [Detection((0, 0, 190, 100), 0.8, "top")], margin=0.1)
    assert result.box == (0, 0, 200, 100)


def test_no_detection_keeps_the_whole_image_and_says_so():
    image = photo()
    result = crops(image, [])
    assert result.whole_image and result.detection is None and result.detections == ()
    assert result.crop.size == image.size and result.box == (0, 0, 200, 100)


def test_degenerate_box_still_gives_a_pixel():
    result = crops(photo(5, 300), [Detection((5, 300, 5, 300), 0.5, "top")], margin=0.0)
    assert result.crop.size[0] >= 1 and result.crop.size[1] >= 1


def test_negative_margin_is_a_clear_error():
    try:
        crops(photo(), [], margin=-1)
    except ValueError as error:
        assert "margin" in str(error)
    else:
        raise AssertionError("a negative margin must be refused")


class Scripted:
    """Returns the boxes scoring at least the threshold (0.5 when None) and records each call."""

    def __init__(self, *scores):
        self.boxes = [Detection((0, 0, 10 + n, 10), s, "top") for n, s in enumerate(scores)]
        self.calls = []

    def detect(self, image, threshold=None):
        self.calls.append(threshold)
        return [d for d in self.boxes if d.score >= (0.5 if threshold is None else threshold)]


def test_find_garments_falls_back_to_the_best_box_above_the_floor():
    from detector import FLOOR, find_garments

    assert [d.score for d in find_garments(Scripted(0.9, 0.6, 0.3), photo())] == [0.9, 0.6]
    unsure = Scripted(0.3, 0.1, 0.06)
    assert [d.score for d in find_garments(unsure, photo(), 0.8)] == [0.3] and unsure.calls == [0.8, FLOOR]
    assert find_garments(Scripted(0.04, 0.02), photo()) == []
    low = Scripted(0.04)
    assert find_garments(low, photo(), 0.01) == low.boxes and low.calls == [0.01]  # below the floor: asked once
