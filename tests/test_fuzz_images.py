"""A short CI fuzz of numbpie.images.load: mutated JPEG/PNG/WEBP/GIF bytes give RGB or ImageError."""

from __future__ import annotations

import io
import os
import random
import re
import signal
import struct
import subprocess
import sys
import time
import warnings
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from numbpie.images import DEFAULT_MAX_PIXELS, ImageError, load


def _picture(size=(32, 24), mode="RGB") -> Image.Image:
    """A small image with edges and colours, so every codec has real work to do."""
    image = Image.new(mode, size, "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((2, 2, 20, 14), fill="red")
    draw.ellipse((12, 8, 30, 22), fill="blue")
    return image


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    """`image` saved as `fmt` into bytes."""
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def _seeds() -> list[bytes]:
    """Valid inputs to mutate: one or two of each format the loader accepts."""
    rgb = _picture()
    exif = Image.Exif()
    exif[0x0112] = 6
    frames = [rgb, rgb.rotate(90), rgb.rotate(180)]
    return [
        _encode(rgb, "JPEG", quality=80),
        _encode(rgb, "JPEG", progressive=True, exif=exif.tobytes()),
        _encode(_picture(mode="RGBA"), "PNG"),
        _encode(rgb.convert("P"), "PNG", transparency=0),
        _encode(rgb, "WEBP", quality=70),
        _encode(_picture(mode="RGBA"), "WEBP", lossless=True),
        _encode(rgb, "GIF", save_all=True, append_images=frames[1:], duration=40, loop=0),
    ]


SEEDS = _seeds()
INTERESTING = [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF]


def _position(rng: random.Random, data: bytearray) -> int:
    """A byte offset in `data`, half the time in the first 64 bytes where headers live."""
    limit = min(len(data), 64) if rng.random() < 0.5 else len(data)
    return rng.randrange(max(limit, 1))


def _flip(rng, data: bytearray) -> bytearray:
    if data:
        data[_position(rng, data)] ^= 1 << rng.randrange(8)
    return data


def _set(rng, data: bytearray) -> bytearray:
    if data:
        data[_position(rng, data)] = rng.choice(INTERESTING) if rng.random() < 0.5 else rng.randrange(256)
    return data


def _insert(rng, data: bytearray) -> bytearray:
    at = _position(rng, data)
    data[at:at] = rng.randbytes(rng.randint(1, 32))
    return data


def _delete(rng, data: bytearray) -> bytearray:
    at = _position(rng, data)
    del data[at:at + rng.randint(1, 64)]
    return data


def _repeat(rng, data: bytearray) -> bytearray:
    """A slice repeated many times: floods of tiny chunks, segments, scans or junk."""
    at = _position(rng, data)
    data[at:at] = data[at:at + rng.randint(1, 200)] * rng.choice([10, 100, 1_000])
    return data


def _truncate(rng, data: bytearray) -> bytearray:
    return data[:rng.randrange(len(data) + 1)]


def _big_number(rng, data: bytearray) -> bytearray:
    """Overwrite 2 or 4 bytes with a large value: sizes, lengths and offsets live there."""
    at, width = _position(rng, data), rng.choice([2, 4])
    value = rng.choice([0, 1, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]) & ((1 << (8 * width)) - 1)
    data[at:at + width] = value.to_bytes(width, rng.choice(["big", "little"]))
    return data


def _splice(rng, data: bytearray) -> bytearray:
    """Another seed's header in front of this seed's body."""
    other = rng.choice(SEEDS)
    cut = rng.randrange(min(len(other), 128) + 1)
    return bytearray(other[:cut]) + data[cut:]


def fix_png_crcs(data: bytearray) -> bytearray:
    """Recompute every PNG chunk CRC, so mutations reach the decoder instead of the CRC check."""
    at = 8
    while data.startswith(b"\x89PNG") and at + 12 <= len(data):
        length = struct.unpack(">I", data[at:at + 4])[0]
        end = at + 8 + length
        if end + 4 > len(data):
            break
        data[end:end + 4] = struct.pack(">I", zlib.crc32(data[at + 4:end]))
        at = end + 4
    return data


MUTATIONS = [_flip, _set, _insert, _delete, _repeat, _truncate, _big_number, _splice]


@st.composite
def mutated_images(draw) -> bytes:
    """A seed image with one to five mutations; hypothesis picks which, a seeded RNG where."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    rng = draw(st.randoms(use_true_random=True))
    for mutate in draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=5)):
        data = mutate(rng, data)
    if draw(st.booleans()):
        data = fix_png_crcs(data)
    return bytes(data)


def test_every_seed_is_a_valid_image():
    sizes = [load(seed).size for seed in SEEDS]
    assert sizes == [(32, 24), (24, 32)] + [(32, 24)] * 5  # the second seed is EXIF-rotated


@settings(max_examples=500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_images())
def test_mutated_images_load_or_raise_image_error(data):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            image = load(data)
        except ImageError as error:
            assert 0 < len(str(error)) < 250
        else:
            assert image.mode == "RGB"
            assert 0 < image.width * image.height <= DEFAULT_MAX_PIXELS
    assert [str(w.message)[:80] for w in caught] == []


# --- the long-run harness, scripts/fuzz.py, on a few inputs ---------------------------------

FUZZ_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fuzz.py"


def _raises_key_error():
    def run(data):
        raise KeyError("not an ImageError")
    return run


def _hangs():
    return lambda data: time.sleep(30)


def _segfaults():
    return lambda data: os.kill(os.getpid(), signal.SIGSEGV)


def _allocates_two_gb():
    return lambda data: bytearray(2 * 1024**3)


def _fuzz(tmp_path, *args: str) -> tuple[int, dict[str, int]]:
    """Run scripts/fuzz.py; its exit code and the counts it printed."""
    command = [sys.executable, str(FUZZ_SCRIPT), "--save", str(tmp_path / "saved"), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    counts = dict(re.findall(r"^\s+(ok|ImageError|crash|timeout|over-memory)\s+(\d+)$", done.stdout, re.M))
    return done.returncode, {k: int(v) for k, v in counts.items()}


def test_fuzz_script_short_run_is_clean(tmp_path):
    code, counts = _fuzz(tmp_path, "--target", "images", "--count", "300", "--seed", "7")
    assert code == 0
    assert counts["ok"] > 0 and counts["ImageError"] > 0
    assert counts["ok"] + counts["ImageError"] == 300
    assert not (tmp_path / "saved").exists()


@pytest.mark.parametrize(("factory", "outcome", "extra"), [
    ("_raises_key_error", "crash", []),
    ("_segfaults", "crash", []),
    ("_hangs", "timeout", ["--timeout", "0.5"]),
    ("_allocates_two_gb", "over-memory", []),
])
def test_fuzz_script_catches_misbehaving_targets(tmp_path, factory, outcome, extra):
    target = f"tests.test_fuzz_images:{factory}"
    code, counts = _fuzz(tmp_path, "--target", target, "--count", "2", *extra)
    assert code == 1
    assert counts[outcome] == 2
    assert sorted(p.name for p in (tmp_path / "saved").iterdir()) == [
        f"{outcome}-000000.bin", f"{outcome}-000001.bin"]
