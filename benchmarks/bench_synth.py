"""Render speed of numbpie.synth on one core: product, model and street shots per second.

python benchmarks/bench_synth.py [--count 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from numbpie.synth import random_spec, render_model, render_product, render_street  # noqa: E402


def _rate(render, count: int) -> tuple[float, float]:
    """Renders per wall-clock second and per CPU second over `count` specs (after a warm-up)."""
    render(random_spec(10_000))
    wall, cpu = time.perf_counter(), time.process_time()
    for seed in range(count):
        render(random_spec(seed))
    return count / (time.perf_counter() - wall), count / (time.process_time() - cpu)


def _report(name: str, rates: tuple[float, float]) -> None:
    print(f"{name}: {rates[0]:.1f} images/s wall, {rates[1]:.1f} images/s per CPU second")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--count", type=int, default=200, help="product shots to time (model: 1/2, street: 1/8)"
    )
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the issue asks
    _report("product 256px ", _rate(render_product, args.count))
    _report("model 256px   ", _rate(render_model, max(1, args.count // 2)))
    _report("street 640x480", _rate(lambda s: render_street(s, s.seed), max(1, args.count // 8)))


if __name__ == "__main__":
    main()
