"""Detector latency on 640x480 photos with TensorFlow held to a number of CPU threads.

python benchmarks/bench_detector.py --detector bundled --threads 2 [--out docs/bench_detector.json]
python benchmarks/bench_detector.py --random   # an exported random-weight SSD, for speed only
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _random_detector_path(folder: str) -> Path:
    from detector.export import export_graph
    from detector.model import SSDConfig, build_ssd

    config = SSDConfig()
    return export_graph(build_ssd(config), config, Path(folder) / "random.pb")


def _photos(count: int, width: int, height: int) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [
        Image.fromarray(rng.integers(0, 256, (height, width, 3), np.uint8)) for _ in range(count)
    ]


def main(argv: list[str] | None = None) -> dict:
    """Time detect() per image and print (and optionally write) a JSON report."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--detector", default="bundled", help="registered name or path to a .pb")
    parser.add_argument(
        "--random", action="store_true", help="benchmark a random-weight export instead"
    )
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow intra-op threads")
    parser.add_argument("--runs", type=int, default=50, help="timed runs after 5 warm-up runs")
    parser.add_argument("--size", default="640x480", help="photo size WxH")
    parser.add_argument("--out", help="also write the report here (JSON)")
    args = parser.parse_args(argv)

    from detector._tf import tf  # torchvision before TensorFlow, or the process aborts

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import detector

    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as folder:
        source = _random_detector_path(folder) if args.random else args.detector
        det = detector.load(source)
        photos = _photos(8, width, height)
        for photo in photos[:5]:
            det.detect(photo)
        times = []
        for i in range(args.runs):
            start = time.perf_counter()
            det.detect(photos[i % len(photos)])
            times.append((time.perf_counter() - start) * 1000)
    report = {
        "benchmark": "detector latency",
        "detector": "random weights" if args.random else str(args.detector),
        "image": args.size,
        "threads": args.threads,
        "runs": args.runs,
        "median_ms": round(float(np.median(times)), 2),
        "p90_ms": round(float(np.percentile(times, 90)), 2),
        "mean_ms": round(float(np.mean(times)), 2),
        "cpu": platform.processor() or platform.machine(),
        "command": "python benchmarks/bench_detector.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
    }
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
