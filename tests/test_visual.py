"""Pictures for people: pure functions on PIL images."""

from PIL import Image

from numbpie.visual import letterbox


def test_letterbox_gives_one_size_and_keeps_the_whole_picture():
    tall = Image.new("RGB", (50, 200), (200, 0, 0))
    wide = Image.new("RGB", (300, 100), (0, 0, 200))
    boxed = [letterbox(image, (120, 120)) for image in (tall, wide)]
    assert [b.size for b in boxed] == [(120, 120), (120, 120)]
    assert boxed[0].getpixel((60, 60)) == (200, 0, 0) and boxed[0].getpixel((2, 60)) == (255, 255, 255)
    assert boxed[1].getpixel((60, 60)) == (0, 0, 200) and boxed[1].getpixel((60, 2)) == (255, 255, 255)
    assert boxed[1].getpixel((1, 60)) == (0, 0, 200)  # the whole width is kept
