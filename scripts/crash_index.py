"""Kill `python -m numbpie index` with SIGKILL at random moments and check the catalog survives.

After every kill: the index loads, holds exactly the catalog's products, and has no duplicates.
At the end a clean rerun must index every source image exactly once.

    python scripts/crash_index.py --kills 20 --images 600
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from numbpie.app.indexer import open_catalog  # noqa: E402
from numbpie.index import Index  # noqa: E402


def write_images(folder: Path, count: int) -> None:
    """`count` distinct small JPEGs in two category folders."""
    for n in range(count):
        rng = np.random.default_rng(n)
        image = Image.new("RGB", (80, 100), tuple(int(c) for c in rng.integers(0, 255, 3)))
        x0, x1 = sorted(int(v) for v in rng.integers(0, 80, 2))
        y0, y1 = sorted(int(v) for v in rng.integers(0, 100, 2))
        ImageDraw.Draw(image).ellipse((x0, y0, x1, y1), fill=(0, 0, 0))
        target = folder / ("top" if n % 2 else "dress") / f"item_{n:04d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        image.save(target)


def check(catalog_dir: Path) -> tuple[int, str | None]:
    """(products, problem or None) for a catalog folder right after a kill."""
    catalog = open_catalog(catalog_dir)
    ids = catalog.ids()
    images = [p.image for p in catalog]
    if len(set(images)) != len(images):
        return len(ids), "a source image is in the catalog twice"
    if not (catalog_dir / "index.json").exists():
        return len(ids), None if not ids else "catalog rows but no index"
    try:
        index = Index.load(catalog_dir, count=len(ids), keep_ids=ids)
    except ValueError as error:
        return len(ids), f"index does not load: {error}"
    held = index.ids()
    if len(np.unique(held)) != len(held):
        return len(ids), "duplicate ids in the index"
    return len(ids), None


def wait_until_embedding(process: subprocess.Popen, timeout: float = 120.0) -> None:
    """Block until the indexer's progress bar appears on stderr (or it exits / times out)."""
    seen = threading.Event()

    def read() -> None:
        for chunk in iter(lambda: process.stderr.read1(256), b""):
            if b"embedding" in chunk:
                seen.set()
        seen.set()  # stderr closed: the process ended

    threading.Thread(target=read, daemon=True).start()
    seen.wait(timeout)


def index_command(source: Path, catalog_dir: Path) -> list[str]:
    return [sys.executable, "-m", "numbpie", "index", str(source), "--catalog", str(catalog_dir),
            "--embedder", "random", "--checkpoint-every", "8"]


def run(kills: int, count: int, seed: int, workdir: Path, log=print) -> dict:
    """Kill the indexer `kills` times, checking after each, then finish; returns the counts."""
    rng = random.Random(seed)
    source, catalog_dir = workdir / "source", workdir / "catalog"
    write_images(source, count)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    problems, progress = [], []
    for n in range(kills):
        process = subprocess.Popen(index_command(source, catalog_dir), env=env, cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until_embedding(process)  # start-up (imports) takes seconds; kill during the work
        time.sleep(rng.uniform(0.0, 1.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
        products, problem = check(catalog_dir)
        progress.append(products)
        log(f"kill {n + 1}/{kills}: {products} products indexed, {problem or 'consistent'}")
        if problem:
            problems.append(problem)
    finish = subprocess.run(index_command(source, catalog_dir), env=env, cwd=ROOT,
                            capture_output=True, text=True)
    products, problem = check(catalog_dir)
    if finish.returncode != 0 or problem or products != count:
        problems.append(problem or f"final run: {products} of {count} products ({finish.stderr[-300:]})")
    log(f"final: {products}/{count} products, {len(problems)} problems")
    return {"kills": kills, "images": count, "after_each_kill": progress, "final": products,
            "problems": problems}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="how many times to SIGKILL the indexer")
    parser.add_argument("--images", type=int, default=600, help="source images to index")
    parser.add_argument("--seed", type=int, default=0, help="seed for the kill times")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        result = run(args.kills, args.images, args.seed, Path(workdir))
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
