"""Run every benchmark and write docs/benchmarks.md with tables and plots.

python -m benchmarks.run [--quick] [--out docs/benchmarks.md] [--skip search,gan,...] [--no-merge]

A run of some sections (--skip) merges them into the results saved beside --out: each section
comes from the newest run that measured it, and the report lists those runs and their commands.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from benchmarks.write import SECTIONS


def _section(name: str, results: dict, notes: list, call):
    """Run one benchmark; a failure becomes a note in the report, not a lost run."""
    start = time.perf_counter()
    print(f"[{time.strftime('%H:%M:%S')}] {name} ...", file=sys.stderr, flush=True)
    try:
        results[name] = call()
    except Exception as error:  # noqa: BLE001 - report and go on
        notes.append(f"{name}: failed ({type(error).__name__}: {error})")
        traceback.print_exc()
    results.setdefault("seconds", {})[name] = time.perf_counter() - start


def run_limits(quick: bool) -> dict:
    from benchmarks import limits

    return {"matmul": limits.matmul_rows(n=1024 if quick else 2048, runs=3 if quick else 5),
            "bandwidth": limits.bandwidth_rows(0.5 if quick else 2.0)}


def run_embed(quick: bool, peak: float | None) -> dict:
    from benchmarks import bench_embed
    from numbpie import embedder as embedders

    images = bench_embed.catalog_images(16 if quick else 32)
    default = embedders.load()
    large = bench_embed.random_inception(299)
    flops = {size: bench_embed.inception_flops(large.model, size) for size in (128, 299)}
    rows, precision = [], []
    for model in (default, large):
        rows += bench_embed.throughput_rows(
            model, images, batch_sizes=(1, 16) if quick else (1, 4, 16, 32),
            threads=(1, 2) if quick else (1, 2, 4), min_seconds=1.0 if quick else 3.0)
        precision += bench_embed.precision_rows(model, images, batch=8 if quick else 16,
                                                runs=1 if quick else 3)
    for row in rows:
        row["of_fp32_peak"] = row["gflops"] / peak if peak else None
    return {"flops": flops, "throughput": rows, "precision": precision}


def run_product(quick: bool) -> dict:
    """The page's path as a user runs it, now and (in a fresh process, pools unsized, fp32) as before."""
    import subprocess

    from benchmarks import bench_pipeline

    runs = 10 if quick else 30
    rows = bench_pipeline.product_rows(runs)
    rows += bench_pipeline.product_rows(runs, precision="fp32")
    # TensorFlow sizes its pools once per process, so "before the policy" needs a process of its own.
    before = subprocess.run([sys.executable, "-m", "benchmarks.bench_pipeline", "--runs", str(runs),
                             "--precision", "fp32", "--no-thread-policy"],
                            check=True, capture_output=True, text=True)
    rows += json.loads(before.stdout.strip().splitlines()[-1])["rows"]
    from numbpie.app import demo

    return {"rows": rows, "demo_products": demo.default_products()}


def run_pipeline(quick: bool) -> dict:
    from benchmarks import bench_embed, bench_pipeline
    from numbpie import embedder as embedders

    runs = 5 if quick else 20
    with tempfile.TemporaryDirectory() as tmp:
        dataset = bench_pipeline.make_catalog(Path(tmp) / "catalog", 24 if quick else 200)
        detector, why = bench_pipeline.random_detector(Path(tmp))
        default = embedders.load()
        rows = bench_pipeline.pipeline_rows(f"default embedder ({default.name}, {default.input_size} px)",
                                            default, dataset, runs, detector)
        large = bench_embed.random_inception(299)
        rows += bench_pipeline.pipeline_rows("Inception-V3 299 px (random weights)", large,
                                             dataset, runs, detector)
        try:
            editor = bench_pipeline.style_editor()
            rows += bench_pipeline.pipeline_rows(
                "Inception-V3 299 px + edit (sleeve_length=long, pattern=floral)", large, dataset,
                max(3, runs // 4), detector, editor, {"sleeve_length": "long", "pattern": "floral"})
        except ImportError as error:
            why = (why or "") + f" edit skipped: {error}"
    return {"rows": rows, "detector_note": why, "default_embedder": f"{default.name} ({default.input_size} px)"}


def run_gan(quick: bool, peak: float | None) -> dict:
    from benchmarks import bench_embed, bench_gan

    return {"rows": bench_gan.gan_rows(bench_embed.catalog_images(1)[0], runs=3 if quick else 10,
                                       peak_gflops=peak)}


def run_search(quick: bool, sizes: set[int]) -> dict:
    from benchmarks import bench_search

    rows = []
    if quick:
        rows += bench_search.search_rows(10_000, nq=30, efs=(16, 64), nprobes=(1, 4, 16))
        rows += bench_search.search_rows(10_000, "random", nq=30, efs=(16, 64), nprobes=(1, 16))
        return {"rows": rows}
    if 10_000 in sizes:
        rows += bench_search.search_rows(10_000)
        rows += bench_search.search_rows(10_000, "random", efs=(16, 64, 256), nprobes=(1, 16, 64))
    if 100_000 in sizes:
        rows += bench_search.search_rows(100_000)
    if 1_000_000 in sizes:
        # HNSW over 10^6 x 2048 takes far longer to build on 2 cores than this run may take.
        rows += bench_search.search_rows(1_000_000, hnsw=False, flat_nq=10, nprobes=(1, 4, 16, 64))
    return {"rows": rows}


def run_flat(quick: bool, threads: int) -> dict:
    from benchmarks import bench_search

    return {"rows": bench_search.flat_reference_rows(139_709, runs=10 if quick else 50, product_threads=threads)}


ENV = ("NUMBPIE_DATA", "NUMBPIE_DEMO_PRODUCTS", "NUMBPIE_THREADS")  # settings a run's figures depend on


def run_entry(results: dict) -> dict:
    """This run as the report lists it: command (with the settings it ran under), sections, load, notes."""
    return {"argv": results["argv"], "env": {key: os.environ[key] for key in ENV if key in os.environ},
            "date": time.strftime("%Y-%m-%d %H:%M"), "quick": results["quick"],
            "sections": [name for name in SECTIONS if name in results],
            "load_average": results["machine"]["load_average"],
            "load_average_end": results["machine"]["load_average_end"], "notes": results["notes"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few runs (minutes)")
    parser.add_argument("--out", default="docs/benchmarks.md", help="report to write")
    parser.add_argument("--skip", default="", help=f"comma-separated sections to skip: {','.join(SECTIONS)}")
    parser.add_argument("--search-sizes", default="10000,100000,1000000",
                        help="catalog sizes for the full search section (comma-separated)")
    parser.add_argument("--threads", type=int, default=2, help="one pool size for torch, FAISS and TF")
    parser.add_argument("--from-json", help="only rewrite the report from results.json files of "
                        "earlier runs (comma-separated: their sections are merged, first wins)")
    parser.add_argument("--no-merge", action="store_true",
                        help="write only this run's sections (by default they replace their namesakes in the "
                        "results saved beside --out, and the other sections are kept)")
    args = parser.parse_args(argv)
    if args.from_json:
        from benchmarks.write import rewrite

        rewrite([Path(p) for p in args.from_json.split(",")], Path(args.out))
        return 0
    skip = {s for s in args.skip.split(",") if s}

    from benchmarks import limits
    from benchmarks.common import configure_threads, machine

    configure_threads(args.threads)
    results: dict = {"machine": machine(), "quick": args.quick, "argv": sys.argv[1:] if argv is None else argv}
    notes: list[str] = []
    if "limits" not in skip:
        _section("limits", results, notes, lambda: run_limits(args.quick))
    peak = limits.best_gflops(results["limits"]["matmul"], "float32", args.threads) \
        if "limits" in results else None
    bandwidth = max(r["gb_per_s"] for r in results["limits"]["bandwidth"]) if "limits" in results else None
    for name, call in (("product", lambda: run_product(args.quick)),
                       ("embed", lambda: run_embed(args.quick, peak)),
                       ("pipeline", lambda: run_pipeline(args.quick)),
                       ("gan", lambda: run_gan(args.quick, peak)),
                       ("search", lambda: run_search(args.quick, {int(n) for n in args.search_sizes.split(",")})),
                       ("flat", lambda: run_flat(args.quick, args.threads))):
        if name not in skip:
            configure_threads(args.threads)
            _section(name, results, notes, call)
    results["machine"]["load_average_end"] = os.getloadavg()[0]
    results["notes"] = notes
    results["runs"] = [run_entry(results)]

    from benchmarks.write import limit_figures, merge, write_report

    out = Path(args.out)
    saved = out.parent / out.stem / "results.json"
    if saved.exists() and not args.no_merge:  # a run of some sections keeps the others' figures
        results = merge([results, json.loads(saved.read_text())])
        peak, bandwidth = limit_figures(results, args.threads)
    write_report(results, out, peak, bandwidth)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
