"""Long fuzz run: mutated seed images through a target in a sandboxed worker process; prints counts.

    python scripts/fuzz.py --target images --count 10000 [--seed S] [--save runs/fuzz]
    python scripts/fuzz.py --target http --count 2000 --timeout 30   # POST /search on a live server

Each input runs in a worker subprocess under a memory limit (RLIMIT_AS) and a wall-clock
timeout; a worker that crashes, hangs or runs out of memory is replaced and the input saved.
Input i of seed S is always the same bytes, so `--only i` replays one input.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import random
import select
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUTCOMES = ("ok", "ImageError", "crash", "timeout", "over-memory")
FAILURES = ("crash", "timeout", "over-memory")


# --- targets: name -> factory run once per worker, returning a function that takes bytes ----

def images_target() -> Callable[[bytes], object]:
    """numbpie.images.load, plus the contract on what it returns."""
    from numbpie import images

    def run(data: bytes) -> None:
        image = images.load(data)
        if image.mode != "RGB" or not 0 < image.width * image.height <= images.DEFAULT_MAX_PIXELS:
            raise AssertionError(f"load returned mode {image.mode} size {image.size}")

    return run


class Refused(Exception):
    """The server answered a 4xx with a JSON error sentence: the HTTP form of an ImageError."""


def expected_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean 'input refused cleanly' for every target."""
    from numbpie.images import ImageError

    return (ImageError, Refused)


def pipeline_target() -> Callable[[bytes], object]:
    """The whole query path, `Pipeline.search(bytes)`, over a small generated catalog."""
    import tempfile

    from PIL import Image, ImageDraw

    from numbpie import embedder
    from numbpie.app.indexer import index_catalog
    from numbpie.app.pipeline import Pipeline
    from numbpie.catalog import folder_rows

    folder = Path(tempfile.mkdtemp(prefix="numbpie-fuzz-"))
    for n in range(6):
        image = Image.new("RGB", (64, 80), (40 * n, 200 - 30 * n, 120))
        ImageDraw.Draw(image).ellipse((8, 8, 40 + 3 * n, 60), fill=(255, 255 - 40 * n, 0))
        (folder / "src" / "top").mkdir(parents=True, exist_ok=True)
        image.save(folder / "src" / "top" / f"{n}.png")
    model = embedder.load("random")
    index_catalog(folder / "catalog", model, rows=folder_rows(folder / "src"))
    pipeline = Pipeline.open(folder / "catalog", embedder=model)

    def run(data: bytes) -> None:
        matches = pipeline.search(data, k=3).matches
        if len(matches) != 3 or not all(-1.0001 <= m.score <= 1.0001 for m in matches):
            raise AssertionError(f"search returned {matches}")

    return run


def http_target() -> Callable[[bytes], object]:
    """POST /search of a running `numbpie serve` at $NUMBPIE_FUZZ_URL (the parent starts one)."""
    import httpx

    client = httpx.Client(base_url=os.environ["NUMBPIE_FUZZ_URL"], timeout=60)

    def run(data: bytes) -> None:
        reply = client.post("/search", files={"image": ("upload", data, "application/octet-stream")})
        if reply.status_code == 200:
            results = reply.json()["results"]
            if not results or not all(-1.0001 <= r["score"] <= 1.0001 for r in results):
                raise AssertionError(f"search answered {reply.text[:200]}")
            return
        error = reply.json().get("error") if reply.headers.get("content-type") == "application/json" else None
        if 400 <= reply.status_code < 500 and isinstance(error, str) and error:
            raise Refused(f"{reply.status_code}: {error}")
        raise AssertionError(f"HTTP {reply.status_code}: {reply.text[:200]}")  # a 5xx, or an error without a sentence

    return run


# A target is a zero-argument factory, called once in each worker (after the memory limit is
# set), that returns a function taking the input bytes.
TARGETS: dict[str, Callable[[], Callable[[bytes], object]]] = {
    "images": images_target,
    # torch reserves far more address space than it uses: run this one with --memory-mb 0
    # and read the peak RSS line.
    "pipeline": pipeline_target,
    # the server runs outside the worker (and its memory limit); the worker is only its client
    "http": http_target,
}


def resolve_target(name: str) -> Callable[[], Callable[[bytes], object]]:
    """A registered target by name, or any factory given as 'package.module:function'."""
    if name in TARGETS:
        return TARGETS[name]
    module, _, attr = name.partition(":")
    if not attr:
        raise SystemExit(f"unknown target {name!r}; use one of {', '.join(TARGETS)} or module:function")
    return getattr(importlib.import_module(module), attr)


# --- seeds and mutations ---------------------------------------------------------------------

def build_seeds() -> dict[str, bytes]:
    """Small valid JPEG, PNG, WEBP and GIF files covering the modes the loader converts."""
    from PIL import Image, ImageDraw

    rgb = Image.new("RGB", (32, 24), "white")
    draw = ImageDraw.Draw(rgb)
    draw.rectangle((2, 2, 20, 14), fill="red")
    draw.ellipse((12, 8, 30, 22), fill="blue")
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgb.size))
    exif = Image.Exif()
    exif[0x0112] = 6
    frames = [rgb.rotate(90), rgb.rotate(180)]
    seeds = {
        "jpeg": (rgb, "JPEG", {"quality": 80}),
        "jpeg-progressive-exif": (rgb, "JPEG", {"progressive": True, "exif": exif.tobytes()}),
        "jpeg-cmyk": (rgb.convert("CMYK"), "JPEG", {}),
        "png-rgba": (rgba, "PNG", {}),
        "png-palette-trns": (rgb.convert("P"), "PNG", {"transparency": 0}),
        "png-16bit": (rgb.convert("I;16"), "PNG", {}),
        "webp-lossy": (rgb, "WEBP", {"quality": 70}),
        "webp-lossless-alpha": (rgba, "WEBP", {"lossless": True}),
        "gif-animated": (rgb, "GIF", {"save_all": True, "append_images": frames, "duration": 40}),
    }
    return {name: _encode(image, fmt, options) for name, (image, fmt, options) in seeds.items()}


def _encode(image, fmt: str, options: dict) -> bytes:
    """`image` saved as `fmt` into bytes."""
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def _position(rng: random.Random, data: bytearray) -> int:
    """A byte offset, half the time in the first 64 bytes where headers live."""
    limit = min(len(data), 64) if rng.random() < 0.5 else len(data)
    return rng.randrange(max(limit, 1))


def flip(rng, data, seeds):
    if data:
        data[_position(rng, data)] ^= 1 << rng.randrange(8)
    return data


def set_byte(rng, data, seeds):
    if data:
        data[_position(rng, data)] = rng.choice([0, 1, 0x7F, 0x80, 0xFE, 0xFF, rng.randrange(256)])
    return data


def insert(rng, data, seeds):
    at = _position(rng, data)
    data[at:at] = rng.randbytes(rng.randint(1, 32))
    return data


def delete(rng, data, seeds):
    at = _position(rng, data)
    del data[at:at + rng.randint(1, 64)]
    return data


def duplicate(rng, data, seeds):
    at = _position(rng, data)
    data[at:at] = data[at:at + rng.randint(1, 256)]
    return data


def repeat(rng, data, seeds):
    """A slice repeated up to 100,000 times: floods of tiny chunks, segments or scans."""
    at = _position(rng, data)
    piece = data[at:at + rng.randint(1, 300)]
    data[at:at] = piece * rng.choice([10, 100, 1_000, 10_000, 100_000])
    return data


def truncate(rng, data, seeds):
    return data[:rng.randrange(len(data) + 1)]


def big_number(rng, data, seeds):
    """Overwrite 2 or 4 bytes with an extreme value: sizes, lengths and offsets live there."""
    at, width = _position(rng, data), rng.choice([2, 4])
    value = rng.choice([0, 1, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]) & ((1 << 8 * width) - 1)
    data[at:at + width] = value.to_bytes(width, rng.choice(["big", "little"]))
    return data


def splice(rng, data, seeds):
    """Another seed's header in front of this input's body."""
    other = rng.choice(list(seeds.values()))
    cut = rng.randrange(min(len(other), 128) + 1)
    return bytearray(other[:cut]) + data[cut:]


MUTATIONS = [flip, set_byte, insert, delete, duplicate, repeat, truncate, big_number, splice]


def fix_png_crcs(data: bytearray) -> bytearray:
    """Recompute PNG chunk CRCs so mutations reach the decoder rather than the CRC check."""
    at = 8
    while data.startswith(b"\x89PNG") and at + 12 <= len(data):
        end = at + 8 + struct.unpack(">I", data[at:at + 4])[0]
        if end + 4 > len(data):
            break
        data[end:end + 4] = struct.pack(">I", zlib.crc32(data[at + 4:end]))
        at = end + 4
    return data


def make_input(seeds: dict[str, bytes], seed: int, index: int) -> tuple[bytes, str]:
    """Input `index` of run `seed` (always the same bytes) and how it was made."""
    rng = random.Random(f"{seed}:{index}")
    name = rng.choice(sorted(seeds))
    data = bytearray(seeds[name])
    steps = [rng.choice(MUTATIONS) for _ in range(rng.randint(1, 6))]
    for mutate in steps:
        data = mutate(rng, data, seeds)
    if rng.random() < 0.5:
        data = fix_png_crcs(data)
    return bytes(data), f"{name}: {','.join(step.__name__ for step in steps)}"


# --- the worker (child process) --------------------------------------------------------------

def worker_main(target: str, memory_mb: int) -> None:
    """Read length-prefixed inputs on stdin, run the target, answer one JSON line per input."""
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory_mb:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints from the target must not corrupt the protocol
    run, expected = resolve_target(target)(), expected_errors()
    replies.write(json.dumps({"ready": True}) + "\n")  # startup time is not the input's time
    while header := sys.stdin.buffer.read(4):
        data = sys.stdin.buffer.read(struct.unpack(">I", header)[0])
        _reset_peak_rss()
        start = time.perf_counter()
        try:
            run(data)
            outcome, detail = "ok", ""
        except expected as error:
            outcome, detail = "ImageError", str(error)[:200]
        except MemoryError:
            outcome, detail = "over-memory", "MemoryError"
        except Exception as error:  # noqa: BLE001 - anything else is the bug we are hunting
            outcome, detail = "crash", f"{type(error).__name__}: {str(error)[:200]}"
        seconds = time.perf_counter() - start
        replies.write(json.dumps({"outcome": outcome, "detail": detail, "seconds": seconds,
                                  "rss_mb": _peak_rss_mb()}) + "\n")


def _reset_peak_rss() -> None:
    """Reset this process's peak RSS (Linux clear_refs 5), so each input's peak is its own."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_mb() -> float:
    """Peak RSS in MB since the last reset (VmHWM), or the lifetime peak where unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the parent ----------------------------------------------------------------------------

class Worker:
    """One sandboxed worker process; replaced whenever it dies or hangs."""

    def __init__(self, target: str, memory_mb: int, verbose: bool):
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", target,
                   "--memory-mb", str(memory_mb)]
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=None if verbose else subprocess.DEVNULL)
        ready, _, _ = select.select([self.proc.stdout], [], [], 120)
        if not ready or not self.proc.stdout.readline():
            self.kill()
            raise SystemExit(f"the {target} worker did not start; rerun with --verbose to see why")

    def run(self, data: bytes, timeout: float) -> dict:
        """Send one input; the reply, or a synthesised one for a hang or a dead worker."""
        try:
            self.proc.stdin.write(struct.pack(">I", len(data)) + data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            return self._death()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.kill()
            return {"outcome": "timeout", "detail": f"no answer in {timeout:g} s", "seconds": timeout}
        line = self.proc.stdout.readline()
        return json.loads(line) if line else self._death()

    def _death(self) -> dict:
        """Classify a worker that died mid-input: SIGKILL from outside is the OOM killer."""
        code = self.proc.wait()
        if code == -signal.SIGKILL:
            return {"outcome": "over-memory", "detail": "killed by SIGKILL (OOM?)", "seconds": 0.0}
        name = signal.Signals(-code).name if code < 0 else f"exit code {code}"
        return {"outcome": "crash", "detail": f"worker died: {name}", "seconds": 0.0}

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()


def fuzz(args) -> Counter:
    """Run the inputs, print a line per failure and a summary; return the outcome counts."""
    seeds = build_seeds()
    indices = [args.only] if args.only is not None else range(args.count)
    counts, slowest, peak = Counter(), (0.0, -1, ""), (0.0, -1)
    worker, start = None, time.perf_counter()
    for index in indices:
        data, how = make_input(seeds, args.seed, index)
        if worker is None or not worker.alive():
            worker = Worker(args.target, args.memory_mb, args.verbose)
        reply = worker.run(data, args.timeout)
        if reply["outcome"] == "timeout":  # confirm in a fresh worker: the machine may be busy
            worker = Worker(args.target, args.memory_mb, args.verbose)
            reply = worker.run(data, args.timeout)
        counts[reply["outcome"]] += 1
        slowest = max(slowest, (reply["seconds"], index, how))
        peak = max(peak, (reply.get("rss_mb", 0.0), index))
        if reply["outcome"] in FAILURES:
            saved = _save(args.save, reply["outcome"], index, data)
            print(f"{reply['outcome']}: input {index} ({how}): {reply['detail']} -> {saved}", flush=True)
        if args.progress and (index + 1) % args.progress == 0:
            print(f"... {index + 1} inputs, {dict(counts)}", flush=True)
    if worker is not None:
        worker.close()
    _summary(args, counts, time.perf_counter() - start, slowest, peak)
    return counts


def _save(folder: str, outcome: str, index: int, data: bytes) -> Path:
    """Write an offending input where it can be replayed; return its path."""
    path = Path(folder) / f"{outcome}-{index:06d}.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _summary(args, counts: Counter, wall: float, slowest, peak) -> None:
    """Print the counts table the README quotes."""
    total = sum(counts.values())
    print(f"target {args.target}: {total} inputs, seed {args.seed}, {wall:.1f} s wall, "
          f"timeout {args.timeout:g} s, memory limit {args.memory_mb} MB")
    for outcome in OUTCOMES:
        print(f"  {outcome:<12} {counts[outcome]:>7}")
    print(f"  slowest input  #{slowest[1]} {slowest[0]:.3f} s ({slowest[2]})")
    print(f"  peak RSS       {peak[0]:.0f} MB (input #{peak[1]})")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="images",
                        help=f"what to fuzz: {', '.join(TARGETS)}, or a factory as module:function")
    parser.add_argument("--count", type=int, default=10_000, help="number of mutated inputs")
    parser.add_argument("--seed", type=int, default=0, help="run seed; input i of seed S never changes")
    parser.add_argument("--only", type=int, default=None, help="replay just input number ONLY")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds allowed per input")
    parser.add_argument("--memory-mb", type=int, default=1024,
                        help="worker address-space limit (RLIMIT_AS) in MB; 0 = none")
    parser.add_argument("--save", default="runs/fuzz", help="folder for inputs that crash, hang or blow memory")
    parser.add_argument("--progress", type=int, default=0, help="print counts every N inputs")
    parser.add_argument("--verbose", action="store_true", help="show the worker's stderr")
    parser.add_argument("--url", default=None,
                        help="http target: a running server (default: start `numbpie serve` on the demo catalog)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker_main(args.worker, args.memory_mb)
        return 0
    resolve_target(args.target)  # fail fast on a bad name, before any worker starts
    if args.target == "http":
        return fuzz_http(args)
    counts = fuzz(args)
    return 1 if any(counts[outcome] for outcome in FAILURES) else 0


def fuzz_http(args) -> int:
    """The http target against `--url`, or a `numbpie serve` of the demo catalog started here; then /health."""
    import httpx

    from benchmarks.server import running_server

    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(running_server(log=Path(args.save) / "server.log"))
        os.environ["NUMBPIE_FUZZ_URL"] = url  # the workers inherit it
        counts = fuzz(args)
        health = httpx.get(f"{url}/health", timeout=30)
        print(f"  /health after  {health.status_code} {health.text}")
    return 1 if any(counts[outcome] for outcome in FAILURES) or health.status_code != 200 else 0


if __name__ == "__main__":
    sys.exit(main())
