"""Safe image loading: untrusted bytes, paths or uploads in, one RGB PIL image out (or ImageError)."""

from __future__ import annotations

import io
import os
import re
import stat
import threading
import warnings
from collections import Counter

from PIL import Image

from numbpie.errors import ImageError, UnsupportedImageError

__all__ = [
    "DEFAULT_MAX_BYTES", "DEFAULT_MAX_PIXELS", "SUPPORTED_FORMATS", "ImageError", "decode", "load", "read_bytes",
]

SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF")
DEFAULT_MAX_BYTES = 20_000_000
DEFAULT_MAX_PIXELS = 40_000_000

_SUPPORTED_TEXT = ", ".join(SUPPORTED_FORMATS)
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_PIL_DIR = os.path.dirname(Image.__file__)
# Python < 3.14 keeps warning filters process-wide, so catch_warnings is not thread-safe:
# interleaved enter/exit pairs can leave the filters broken for good. One lock keeps our own
# decodes from interleaving; warnings raised meanwhile by other code are re-emitted.
_WARNINGS_LOCK = threading.Lock()
# Same table as PIL.ImageOps.exif_transpose; we apply it without rewriting metadata we drop.
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# PIL walks these structures in Python (or, for JPEG scans, re-reads the whole image once per
# scan), so a 20 MB file of tiny ones takes seconds; real photos stay far below these counts.
MAX_JPEG_SEGMENTS = 1_000
MAX_JPEG_SCANS = 100  # a progressive JPEG has ~10; each extra scan costs a pass over all pixels
MAX_JUNK_BYTES = 4_096  # bytes between JPEG/GIF header parts, which PIL steps over one at a time
# Header segments PIL parses with Python loops (DQT per table, APP13 per Photoshop resource)
# or by quadratic concatenation (EXIF parts in APP1); real photos carry a few of each.
_JPEG_SEGMENT_LIMITS = {0xDB: ("DQT", 16), 0xE1: ("APP1", 64), 0xED: ("APP13", 16)}
MAX_PNG_CHUNKS = 20_000  # libpng writes 8 KB IDAT chunks: 2,500 for a 20 MB file
MAX_GIF_METADATA_BLOCKS = 10_000
MAX_RLE_BMP_BYTES = 2_000_000  # PIL decodes RLE bitmaps in pure Python
_GIF_BLOCK_START = re.compile(rb"[!,;]")
_JPEG_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # skips entropy data, RSTn, fill
# Well-known formats we refuse, named so the message can say what the file is.
_OTHER_SIGNATURES = (
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\x00\x00\x02\x00", "CUR"),
    (b"%PDF", "PDF"),
    (b"8BPS", "PSD"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
)

_SUPPORTED_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
)


def load(source, *, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode bytes, a path or a binary file object into an upright RGB image, or raise ImageError."""
    data = read_bytes(source, max_bytes=max_bytes)
    return decode(data, max_pixels=max_pixels)


def read_bytes(source, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The raw bytes of `source`, reading at most `max_bytes` + 1; too many or none is an ImageError."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = _from_buffer(source, max_bytes)
    elif isinstance(source, (str, os.PathLike)):
        data = _from_path(source, max_bytes)
    elif callable(getattr(source, "read", None)):
        data = _from_file(source, max_bytes)
    else:
        raise ImageError(f"Expected image bytes, a path or a binary file object, not {type(source).__name__}.")
    if not data:
        raise ImageError("The image is empty (0 bytes).")
    if len(data) > max_bytes:
        raise ImageError(f"The image is larger than the {max_bytes:,}-byte limit.")
    return data


def decode(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode image bytes into an upright RGB image, checking the pixel count before decoding."""
    kind = _other_format(data)
    if kind:
        raise UnsupportedImageError(f"{kind} files are not supported; use one of {_SUPPORTED_TEXT}.")
    _check_structure(data)
    caught: list[warnings.WarningMessage] = []
    try:
        with _WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            return _decode(data, max_pixels)
    finally:
        _reemit_foreign(caught)  # after the capture ends, or they would be captured again


def _decode(data: bytes, max_pixels: int) -> Image.Image:
    """PIL's part of `decode`, run with warnings captured."""
    kind = _supported_format(data)
    what = f"{kind} image" if kind else "image"
    try:
        with Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS) as image:
            what = f"{image.format} image"
            _check_pixels(image.size, max_pixels)
            image.load()
            _check_pixels(image.size, max_pixels)  # a GIF frame may grow the canvas
            return _upright(_to_rgb(image), _orientation(image))
    except (ImageError, MemoryError):
        raise
    except Image.UnidentifiedImageError:
        if kind:  # the signature is right, the rest is not
            raise ImageError(f"The {kind} image is truncated or corrupt (its header cannot be read).") from None
        raise UnsupportedImageError(f"The data is not a supported image; use one of {_SUPPORTED_TEXT}.") from None
    except Image.DecompressionBombError:
        raise ImageError(f"The {what} has more than the {max_pixels:,}-pixel limit.") from None
    except Exception as error:  # noqa: BLE001 - any decoder failure on untrusted bytes is bad data
        raise ImageError(f"The {what} is truncated or corrupt ({_short(error)}).") from None


def _check_structure(data: bytes) -> None:
    """Refuse files built from so many tiny parts that PIL would take seconds to walk them."""
    if data.startswith(b"\xff\xd8") and (problem := _jpeg_problem(data)):
        raise ImageError(f"The JPEG image has {problem}; re-save it with an ordinary encoder.")
    elif data.startswith(b"\x89PNG\r\n\x1a\n") and _png_chunks(data) > MAX_PNG_CHUNKS:
        raise ImageError(f"The PNG image has more than {MAX_PNG_CHUNKS:,} chunks; "
                         "re-save it with an ordinary encoder.")
    elif data.startswith(b"GIF8") and (problem := _gif_problem(data)):
        raise ImageError(f"The GIF image has {problem}; re-save it with an ordinary encoder.")
    elif data.startswith(b"BM") and _bmp_is_rle(data) and len(data) > MAX_RLE_BMP_BYTES:
        raise ImageError(f"RLE-compressed BMP images over {MAX_RLE_BMP_BYTES:,} bytes are not "
                         "supported; convert it to PNG.")


def _jpeg_problem(data: bytes) -> str | None:
    """What would make PIL slow on this JPEG (too many segments, scans, junk bytes), or None."""
    segments, scans, junk, steps, at = Counter(), 0, 0, 0, 2
    while at + 1 < len(data) and steps < 100_000:
        steps += 1
        skip = _jpeg_junk_length(data, at)
        if skip:
            junk, at = junk + (0 if scans else skip), at + skip
            if junk > MAX_JUNK_BYTES:
                return f"more than {MAX_JUNK_BYTES:,} junk bytes between its segments"
            continue
        marker, at = data[at + 1], at + 2
        if marker == 0xD9:
            break
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            continue  # standalone markers carry no length
        segments[marker if not scans else "after"] += 1
        at += int.from_bytes(data[at:at + 2], "big")
        if marker == 0xDA:
            scans += 1
            found = _JPEG_NEXT_MARKER.search(data, at)
            at = found.start() if found else len(data)
        name, limit = _JPEG_SEGMENT_LIMITS.get(marker, ("", 0))
        if limit and not scans and segments[marker] > limit:
            return f"more than {limit} {name} segments"
        if segments.total() > MAX_JPEG_SEGMENTS:
            return f"more than {MAX_JPEG_SEGMENTS:,} segments"
        if scans > MAX_JPEG_SCANS:
            return f"more than {MAX_JPEG_SCANS} scans"
    return None


def _jpeg_junk_length(data: bytes, at: int) -> int:
    """Bytes at `at` that PIL steps over one at a time (junk, stuffed 0xFF00, fill); 0 at a marker."""
    if data[at] == 0xFF:
        return {0x00: 2, 0xFF: 1}.get(data[at + 1], 0)
    found = data.find(b"\xff", at + 1)
    return (found if found >= 0 else len(data)) - at


def _png_chunks(data: bytes) -> int:
    """The number of PNG chunks, counting no further than the limit."""
    chunks, at = 0, 8
    while at + 12 <= len(data) and chunks <= MAX_PNG_CHUNKS:
        at += 12 + int.from_bytes(data[at:at + 4], "big")
        chunks += 1
    return chunks


def _gif_problem(data: bytes) -> str | None:
    """What would make PIL slow before this GIF's first image (junk, metadata floods), or None."""
    flags = data[10] if len(data) > 10 else 0
    at = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    blocks = junk = 0
    while at < len(data) and data[at] not in b",;":
        if data[at] != 0x21:  # PIL steps over junk one byte at a time
            found = _GIF_BLOCK_START.search(data, at)
            end = found.start() if found else len(data)
            junk, at = junk + end - at, end
            if junk > MAX_JUNK_BYTES:
                return f"more than {MAX_JUNK_BYTES:,} junk bytes before its first image"
            continue
        at += 2  # introducer and label, then length-prefixed sub-blocks up to a 0 length
        while at < len(data):
            size, at, blocks = data[at], at + 1 + data[at], blocks + 1
            if blocks > MAX_GIF_METADATA_BLOCKS:
                return f"more than {MAX_GIF_METADATA_BLOCKS:,} metadata blocks before its first image"
            if size == 0:
                break
    return None


def _bmp_is_rle(data: bytes) -> bool:
    """True for a Windows BMP whose pixels are RLE4/RLE8 compressed."""
    header_size = int.from_bytes(data[14:18], "little")
    return header_size >= 40 and int.from_bytes(data[30:34], "little") in (1, 2)


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    """Refuse an image whose declared size exceeds `max_pixels` (or is empty)."""
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageError(f"The image has no pixels ({width}x{height}).")
    if width * height > max_pixels:
        raise ImageError(f"The image is {width}x{height} pixels, more than the {max_pixels:,}-pixel limit.")


def _to_rgb(image: Image.Image) -> Image.Image:
    """A fresh RGB copy of `image`: 16-bit scaled to 8-bit, transparency composited on white."""
    if image.mode in ("I", "F") or image.mode.startswith("I;"):
        return _sixteen_bit_to_l(image).convert("RGB")
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba)  # blends by alpha: "over" onto an opaque background
        return white
    return image.convert("RGB")


def _sixteen_bit_to_l(image: Image.Image) -> Image.Image:
    """Scale 16-bit grey (0..65535) to 8-bit grey; PIL's own convert would clip at 255."""
    return image.convert("I").point(lambda v: v / 256).convert("L")


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1 = upright); unreadable EXIF counts as upright."""
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - corrupt EXIF should not reject an otherwise good photo
        return 1


def _upright(image: Image.Image, orientation: int) -> Image.Image:
    """`image` rotated/flipped as its EXIF orientation asks, with no metadata carried over."""
    method = _ORIENTATION.get(orientation)
    upright = image.transpose(method) if method is not None else image
    upright.info = {}
    return upright


def _supported_format(data: bytes) -> str | None:
    """The supported format whose signature `data` starts with, if any."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((name for signature, name in _SUPPORTED_SIGNATURES if data.startswith(signature)), None)


def _other_format(data: bytes) -> str | None:
    """The name of a well-known unsupported format `data` looks like, else None."""
    for signature, name in _OTHER_SIGNATURES:
        if data.startswith(signature):
            return name
    if data[4:8] == b"ftyp":
        return "HEIC/AVIF"
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<"):
        return "SVG" if b"<svg" in data[:4096].lower() else "XML/HTML text"
    return None


def _from_buffer(source, max_bytes: int) -> bytes:
    """Bytes from a bytes-like object, refusing an oversize one before copying it."""
    view = memoryview(source)
    if view.nbytes > max_bytes:
        raise ImageError(f"The image is larger than the {max_bytes:,}-byte limit.")
    return view.tobytes()


def _from_path(path, max_bytes: int) -> bytes:
    """Up to `max_bytes` + 1 bytes of the regular file at `path`."""
    name = _short(os.fsdecode(path))
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise ImageError(f"{name} is a folder, not an image file.")
        if not stat.S_ISREG(info.st_mode):
            raise ImageError(f"{name} is not a regular file.")
        with open(path, "rb") as file:
            return file.read(max_bytes + 1)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"No such image file: {name}.") from None
    except PermissionError:
        raise ImageError(f"Permission denied reading {name}.") from None
    except (OSError, ValueError) as error:
        raise ImageError(f"Cannot read {name} ({_short(error)}).") from None


def _from_file(file, max_bytes: int) -> bytes:
    """Up to `max_bytes` + 1 bytes from a binary file object, from its current position."""
    limit = max_bytes + 1
    chunks, size = [], 0
    try:
        while size < limit:
            chunk = file.read(limit - size)
            if not chunk:
                break
            if not isinstance(chunk, (bytes, bytearray)):
                raise ImageError("The file object must be opened in binary mode ('rb').")
            chunks.append(bytes(chunk))
            size += len(chunk)
    except ImageError:
        raise
    except (OSError, ValueError) as error:
        raise ImageError(f"Cannot read the file object ({_short(error)}).") from None
    return b"".join(chunks)


def _reemit_foreign(caught: list[warnings.WarningMessage]) -> None:
    """Re-issue warnings that other code raised while ours were captured; PIL's are dropped."""
    for w in caught:
        if not str(w.filename).startswith(_PIL_DIR):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


def _short(value, limit: int = 100) -> str:
    """`value` as printable text cut to `limit` characters, so messages never carry huge reprs."""
    text = str(value).encode("ascii", "backslashreplace").decode("ascii")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
