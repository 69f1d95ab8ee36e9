"""numbpie.images.load: every supported format and mode, every source kind, every bad input."""

from __future__ import annotations

import io
import random
import struct
import threading
import warnings
import zlib

import pytest
from PIL import Image

from numbpie import images
from numbpie.images import SUPPORTED_FORMATS, ImageError, load

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    """No warning may escape `load`: any warning recorded during a test fails it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    assert [str(w.message)[:80] for w in caught] == []


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    """`image` saved as `fmt` into bytes."""
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def noise(size=(64, 48), seed=0) -> Image.Image:
    """A random RGB image (compresses badly, so truncation cuts real pixel data)."""
    return Image.frombytes("RGB", size, random.Random(seed).randbytes(size[0] * size[1] * 3))


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bitmap_png(width: int, height: int, pixels: bool = True) -> bytes:
    """An all-black 1-bit PNG (huge ones compress to KBs); pixels=False leaves IDAT empty."""
    rows = bytes(height * (1 + (width + 7) // 8) if pixels else 0)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
            + png_chunk(b"IDAT", zlib.compress(rows, 9)) + png_chunk(b"IEND", b""))


def near(pixel, expected, tol=12) -> bool:
    """True when every channel of `pixel` is within `tol` of `expected`."""
    return all(abs(a - b) <= tol for a, b in zip(pixel, expected, strict=True))


# --- formats -------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF"])
def test_each_supported_format_loads_as_rgb(fmt):
    image = load(encode(Image.new("RGB", (30, 20), RED), fmt))
    assert image.mode == "RGB"
    assert image.size == (30, 20)
    assert near(image.getpixel((15, 10)), RED)


def test_supported_formats_are_the_five_in_the_brief():
    assert set(SUPPORTED_FORMATS) == {"JPEG", "PNG", "WEBP", "BMP", "GIF"}


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (16, 16), color) for color in (RED, BLUE, (0, 255, 0))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    assert near(load(data).getpixel((8, 8)), RED)


def test_animated_webp_gives_its_first_frame():
    frames = [Image.new("RGB", (16, 16), color) for color in (BLUE, RED)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    assert near(load(data).getpixel((8, 8)), BLUE)


def test_exif_orientation_6_rotates_upright():
    stored = Image.new("RGB", (40, 20), RED)
    stored.paste(BLUE, (20, 0, 40, 20))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    image = load(encode(stored, "JPEG", exif=exif.tobytes(), quality=95))
    assert image.size == (20, 40)
    assert near(image.getpixel((10, 5)), RED)  # the left half is now on top
    assert near(image.getpixel((10, 35)), BLUE)


GREEN = (0, 255, 0)


# Where the stored quadrants (red top left, blue top right, green bottom left, white bottom right)
# are shown for each EXIF orientation, read as (top left, top right, bottom left, bottom right).
SHOWN = {
    1: (RED, BLUE, GREEN, WHITE),
    2: (BLUE, RED, WHITE, GREEN),  # mirrored left-right
    3: (WHITE, GREEN, BLUE, RED),  # turned 180°
    4: (GREEN, WHITE, RED, BLUE),  # mirrored top-bottom
    5: (RED, GREEN, BLUE, WHITE),  # mirrored across the main diagonal
    6: (GREEN, RED, WHITE, BLUE),  # turned 90° clockwise
    7: (WHITE, BLUE, GREEN, RED),  # mirrored across the other diagonal
    8: (BLUE, WHITE, RED, GREEN),  # turned 90° counter-clockwise
}


@pytest.mark.parametrize("orientation", sorted(SHOWN))
def test_every_exif_orientation_is_shown_upright(orientation):
    stored = Image.new("RGB", (40, 20), RED)
    stored.paste(BLUE, (20, 0, 40, 10))
    stored.paste(GREEN, (0, 10, 20, 20))
    stored.paste(WHITE, (20, 10, 40, 20))
    exif = Image.Exif()
    exif[0x0112] = orientation
    image = load(encode(stored, "JPEG", exif=exif.tobytes(), quality=95))
    width, height = (40, 20) if orientation <= 4 else (20, 40)
    assert image.size == (width, height)
    centres = [(width // 4, height // 4), (3 * width // 4, height // 4),
               (width // 4, 3 * height // 4), (3 * width // 4, 3 * height // 4)]
    shown = [image.getpixel(c) for c in centres]
    assert all(near(p, e, tol=30) for p, e in zip(shown, SHOWN[orientation], strict=True)), shown


def test_corrupt_exif_is_ignored_without_warnings():
    broken = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00\x12\x01\x03\x00\x01\x00\x00\x00\x06\x00"
    image = load(encode(Image.new("RGB", (8, 6), RED), "JPEG", exif=broken))
    assert image.size == (8, 6)


# --- modes ---------------------------------------------------------------------------------

def test_rgba_is_composited_on_white():
    rgba = Image.new("RGBA", (3, 1), (0, 0, 0, 0))
    rgba.putpixel((1, 0), (255, 0, 0, 255))
    rgba.putpixel((2, 0), (0, 0, 0, 128))
    image = load(encode(rgba, "PNG"))
    assert image.getpixel((0, 0)) == WHITE
    assert image.getpixel((1, 0)) == RED
    assert near(image.getpixel((2, 0)), (127, 127, 127), tol=2)


def test_la_is_composited_on_white():
    la = Image.new("LA", (2, 1), (0, 0))
    la.putpixel((1, 0), (50, 255))
    image = load(encode(la, "PNG"))
    assert image.getpixel((0, 0)) == WHITE
    assert image.getpixel((1, 0)) == (50, 50, 50)


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_with_transparency_is_composited_on_white(fmt):
    palette = Image.new("P", (2, 1), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    palette.putpixel((1, 0), 1)
    data = encode(palette, fmt, transparency=0)
    assert Image.open(io.BytesIO(data)).mode == "P"
    image = load(data)
    assert image.getpixel((0, 0)) == WHITE
    assert image.getpixel((1, 0)) == RED


def test_palette_png_with_several_transparent_entries():
    palette = Image.new("P", (3, 1), 0)
    palette.putpalette([0, 0, 0, 0, 0, 255, 255, 0, 0] + [0] * (253 * 3))
    palette.putpixel((1, 0), 1)
    palette.putpixel((2, 0), 2)
    image = load(encode(palette, "PNG", transparency=b"\x00\x00\xff"))
    assert [image.getpixel((x, 0)) for x in range(3)] == [WHITE, WHITE, RED]


def test_cmyk_jpeg_becomes_rgb():
    data = encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    image = load(data)
    assert image.mode == "RGB"
    assert near(image.getpixel((4, 4)), RED, tol=20)


def test_16_bit_png_is_scaled_not_clipped():
    deep = Image.new("I;16", (3, 1))
    for x, value in enumerate((0, 32768, 65535)):
        deep.putpixel((x, 0), value)
    data = encode(deep, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    image = load(data)
    assert [image.getpixel((x, 0)) for x in range(3)] == [(0, 0, 0), (128, 128, 128), WHITE]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP"])
def test_grayscale_becomes_rgb(fmt):
    image = load(encode(Image.new("L", (4, 4), 100), fmt))
    assert image.mode == "RGB"
    assert near(image.getpixel((2, 2)), (100, 100, 100), tol=2)


@pytest.mark.parametrize("fmt", ["PNG", "BMP"])
def test_one_bit_becomes_black_and_white_rgb(fmt):
    bitmap = Image.new("1", (8, 1), 0)
    bitmap.putpixel((3, 0), 1)
    image = load(encode(bitmap, fmt))
    assert image.getpixel((0, 0)) == (0, 0, 0)
    assert image.getpixel((3, 0)) == WHITE


# --- sources -------------------------------------------------------------------------------

@pytest.fixture
def png_bytes() -> bytes:
    return encode(Image.new("RGB", (5, 4), BLUE), "PNG")


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview], ids=lambda f: f.__name__)
def test_bytes_like_sources(png_bytes, wrap):
    assert load(wrap(png_bytes)).size == (5, 4)


def test_str_and_path_sources(tmp_path, png_bytes):
    path = tmp_path / "photo.with.a.misleading.name.txt"  # the format is sniffed, not named
    path.write_bytes(png_bytes)
    assert load(path).size == (5, 4)
    assert load(str(path)).size == (5, 4)


def test_binary_file_objects(tmp_path, png_bytes):
    path = tmp_path / "a.png"
    path.write_bytes(png_bytes)
    with open(path, "rb") as file:
        assert load(file).size == (5, 4)
    assert load(io.BytesIO(png_bytes)).size == (5, 4)


def test_streamlit_uploaded_file(png_bytes):
    from streamlit.runtime.uploaded_file_manager import UploadedFile, UploadedFileRec

    upload = UploadedFile(UploadedFileRec("id", "photo.png", "image/png", png_bytes), None)
    assert load(upload).size == (5, 4)


def test_text_mode_file_is_refused(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("hello")
    with open(path) as file, pytest.raises(ImageError, match="binary mode"):
        load(file)


@pytest.mark.parametrize("source", [None, 42, 3.5, ["a.png"]], ids=repr)
def test_unsupported_source_types(source):
    with pytest.raises(ImageError, match="Expected image bytes"):
        load(source)


# --- bad data ------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_images(fmt):
    data = encode(noise(), fmt)
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load(data[: len(data) // 2])


@pytest.mark.parametrize("header, kind", [
    (b"\x89PNG\r\n\x1a\n not really", "PNG"), (b"GIF89a!!", "GIF"),
    (b"RIFF\x10\x00\x00\x00WEBPVP8 junk", "WEBP"), (b"\xff\xd8\xff", "JPEG"),
])
def test_a_right_signature_with_nothing_usable_after_it_is_corrupt(header, kind):
    with pytest.raises(ImageError, match=f"{kind} image is truncated or corrupt"):
        load(header)


def test_random_garbage():
    with pytest.raises(ImageError, match="not a supported image"):
        load(random.Random(1).randbytes(4096))


def test_svg_text():
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>'
    with pytest.raises(ImageError, match="SVG"):
        load(svg)


def test_empty_input(tmp_path):
    with pytest.raises(ImageError, match="empty"):
        load(b"")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load(tmp_path / "empty.png")


@pytest.mark.parametrize("fmt", ["TIFF", "ICO", "PPM", "PCX", "TGA"])
def test_valid_image_in_an_unsupported_format(fmt):
    data = encode(Image.new("RGB", (16, 16), RED), fmt)
    with pytest.raises(ImageError, match="JPEG, PNG, WEBP, BMP, GIF") as error:
        load(data)
    if fmt in ("TIFF", "ICO"):
        assert fmt in str(error.value)


def test_too_many_bytes_is_refused_before_decoding(tmp_path):
    data = encode(noise(), "PNG")
    with pytest.raises(ImageError, match="larger than the 1,000-byte limit"):
        load(data, max_bytes=1000)
    path = tmp_path / "big.png"
    path.write_bytes(data)
    with pytest.raises(ImageError, match="limit"):
        load(path, max_bytes=1000)


def test_file_objects_are_read_only_up_to_the_limit():
    class CountingFile(io.BytesIO):
        read_total = 0

        def read(self, size=-1):
            chunk = super().read(size)
            self.read_total += len(chunk)
            return chunk

    file = CountingFile(bytes(10_000))
    with pytest.raises(ImageError, match="limit"):
        load(file, max_bytes=100)
    assert file.read_total == 101


@pytest.mark.parametrize("size", [(20_000, 20_000), (10_000, 10_000), (7_000, 7_000), (65_535, 65_535)])
def test_too_many_pixels_is_refused_from_the_header(size, monkeypatch):
    data = bitmap_png(*size, pixels=size[0] <= 20_000)
    assert len(data) < 200_000
    decoded = []
    monkeypatch.setattr(Image.core, "zip_decoder", lambda *a: decoded.append(a) or 1 / 0)
    with pytest.raises(ImageError, match="40,000,000-pixel limit"):
        load(data)
    assert decoded == []  # the pixel data was never touched


def test_pixel_limit_is_per_call():
    data = encode(Image.new("RGB", (100, 100), RED), "PNG")
    with pytest.raises(ImageError, match="100x100 pixels, more than the 9,999-pixel limit"):
        load(data, max_pixels=9_999)
    assert load(data, max_pixels=10_000).size == (100, 100)
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # PIL's global is left alone


def test_missing_path_directory_and_non_image(tmp_path):
    with pytest.raises(ImageError, match="No such image file"):
        load(tmp_path / "missing.jpg")
    with pytest.raises(ImageError, match="is a folder"):
        load(tmp_path)
    (tmp_path / "notes.jpg").write_text("not a photo at all")
    with pytest.raises(ImageError, match="not a supported image"):
        load(tmp_path / "notes.jpg")


def test_error_messages_stay_short(tmp_path):
    huge_name = tmp_path / ("x" * 200) / ("y" * 200)
    for source in (huge_name, b"\x89PNG\r\n\x1a\n" + bytes(5_000_000), bytes(5_000_000)):
        with pytest.raises(ImageError) as error:
            load(source)
        assert len(str(error.value)) < 250


def test_image_error_is_a_value_error():
    assert issubclass(ImageError, ValueError)


# --- threads -------------------------------------------------------------------------------

def test_concurrent_loads_agree_and_leave_warning_filters_alone():
    good = [encode(noise(seed=s), fmt) for s, fmt in enumerate(("PNG", "JPEG", "WEBP", "GIF"))]
    bad = [bitmap_png(10_000, 10_000), good[1][:500], b"<svg/>"]
    serial = [load(data).tobytes() for data in good]
    filters = list(warnings.filters)
    failures = []

    def work():
        for _ in range(5):
            if [load(data).tobytes() for data in good] != serial:
                failures.append("different pixels")
            for data in bad:
                try:
                    load(data)
                    failures.append("bad input loaded")
                except ImageError:
                    pass

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert warnings.filters == filters
    assert not images._WARNINGS_LOCK.locked()


def test_warnings_from_other_code_are_passed_on(monkeypatch):
    def getexif_that_warns(self):
        warnings.warn("from elsewhere", UserWarning, stacklevel=1)
        return Image.Exif()

    monkeypatch.setattr(Image.Image, "getexif", getexif_that_warns)
    with pytest.warns(UserWarning, match="from elsewhere"):
        load(encode(Image.new("RGB", (4, 4), RED), "PNG"))


# --- files made of very many tiny parts (PIL would walk them for seconds) ---------------------

def jpeg_with_repeated_scan(copies: int) -> bytes:
    """A progressive JPEG whose last scan (with its tables) is repeated `copies` more times."""
    data = encode(noise((32, 32)), "JPEG", progressive=True)
    last_scan = data.rindex(b"\xff\xc4")  # the DHT before the last SOS, up to EOI
    return data[:-2] + data[last_scan:-2] * copies + b"\xff\xd9"


def test_progressive_jpeg_scan_limit():
    assert load(jpeg_with_repeated_scan(0)).size == (32, 32)
    assert load(jpeg_with_repeated_scan(80)).size == (32, 32)
    with pytest.raises(ImageError, match="more than 100 scans"):
        load(jpeg_with_repeated_scan(images.MAX_JPEG_SCANS))


def test_jpeg_segment_limit():
    data = encode(Image.new("RGB", (8, 8), RED), "JPEG")
    assert load(data[:2] + b"\xff\xfe\x00\x03x" * 500 + data[2:]).size == (8, 8)
    with pytest.raises(ImageError, match="more than 1,000 segments"):
        load(data[:2] + b"\xff\xfe\x00\x03x" * images.MAX_JPEG_SEGMENTS + data[2:])


@pytest.mark.parametrize(("segment", "limit", "name"), [
    (b"\xff\xdb\x00\x43\x00" + bytes(range(1, 65)), 16, "DQT"),  # PIL loops over every table
    (b"\xff\xe1\x00\x0aExif\x00\x00ab", 64, "APP1"),  # PIL joins EXIF parts quadratically
    (b"\xff\xed\x00\x10Photoshop 3.0\x00", 16, "APP13"),  # PIL loops over resources
], ids=["DQT", "APP1", "APP13"])
def test_jpeg_header_segments_pil_parses_slowly_are_limited(segment, limit, name):
    data = encode(Image.new("RGB", (8, 8), RED), "JPEG")
    assert load(data[:2] + segment * (limit - 2) + data[2:]).size == (8, 8)  # PIL wrote up to 2
    with pytest.raises(ImageError, match=f"more than {limit} {name} segments"):
        load(data[:2] + segment * (limit + 1) + data[2:])


def test_jpeg_junk_between_segments_is_limited():
    data = encode(Image.new("RGB", (8, 8), RED), "JPEG")
    app0_end = 2 + 2 + int.from_bytes(data[4:6], "big")
    assert load(data[:app0_end] + b"\x00" * 4_000 + data[app0_end:]).size == (8, 8)
    with pytest.raises(ImageError, match="junk bytes"):
        load(data[:app0_end] + b"\x00" * 5_000 + data[app0_end:])
    with pytest.raises(ImageError, match="junk bytes"):
        load(data[:app0_end] + b"\x00" * 5_000)  # junk to the end, no marker after it


def test_png_chunk_limit():
    data = encode(Image.new("RGB", (8, 8), RED), "PNG")
    header_end = 8 + 25  # signature + IHDR
    filler = png_chunk(b"quIt", b"")  # an ancillary chunk PIL skips
    assert load(data[:header_end] + filler * 100 + data[header_end:]).size == (8, 8)
    with pytest.raises(ImageError, match="more than 20,000 chunks"):
        load(data[:header_end] + filler * images.MAX_PNG_CHUNKS + data[header_end:])


def test_gif_metadata_and_junk_limits():
    data = encode(Image.new("RGB", (8, 8), RED), "GIF")
    start = 13 + 3 * 2 ** ((data[10] & 7) + 1)  # after the header and the global colour table
    comment = b"\x21\xfe" + b"\x01x" * images.MAX_GIF_METADATA_BLOCKS + b"\x00"
    assert load(data[:start] + b"\x21\xfe\x01x\x00" + data[start:]).size == (8, 8)
    with pytest.raises(ImageError, match="metadata blocks"):
        load(data[:start] + comment + data[start:])
    assert load(data[:start] + b"\x00" * 4_000 + data[start:]).size == (8, 8)  # PIL skips junk
    with pytest.raises(ImageError, match="junk bytes"):
        load(data[:start] + b"\x00" * 5_000 + data[start:])


def rle8_bmp(width: int, height: int, body: bytes) -> bytes:
    """A BMP with RLE8-compressed pixels (PIL cannot write these) and a red/blue palette."""
    palette = b"\x00\x00\xff\x00\xff\x00\x00\x00" + bytes(4 * 254)  # BGRX: red, blue, ...
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(body), 2835, 2835, 256, 0)
    offset = 14 + len(info) + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(body), 0, 0, offset) + info + palette + body


def test_rle_bmp_loads_when_small_and_is_refused_when_large():
    image = load(rle8_bmp(4, 2, b"\x04\x00\x00\x00\x04\x01\x00\x01"))  # bottom row red, top blue
    assert image.getpixel((0, 0)) == BLUE
    assert image.getpixel((3, 1)) == RED
    with pytest.raises(ImageError, match="RLE-compressed BMP"):
        load(rle8_bmp(4, 2, b"\x00\x00" * (images.MAX_RLE_BMP_BYTES // 2)))
