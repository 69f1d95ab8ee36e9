"""Per-step query latency through numbpie.app.pipeline.Pipeline.

`product_rows` is the page's own path: `open_pipeline` over the demo catalog with the bundled
models, the product's thread policy and default precision. `pipeline_rows` compares embedders
on a small synthetic catalog of its own.

python -m benchmarks.bench_pipeline [--runs 30] [--precision auto|fp32|bf16] [--no-thread-policy]
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.common import percentiles

__all__ = ["EDIT_TAGS", "make_catalog", "pipeline_rows", "product_rows", "random_detector"]

STEPS = ("load", "detect", "tag", "edit", "embed", "search", "lookup")
EDIT_TAGS = {"sleeve_length": "long"}


def make_catalog(folder: Path, products: int) -> Path:
    """A synth dataset (products + one street photo each) written into `folder`."""
    from numbpie.synth import write_dataset

    write_dataset(folder, products=products, street_per_product=1, seed=2026, progress=False)
    return folder


def random_detector(folder: Path):
    """The SSD detector exported with random weights (speed only), or None with the reason."""
    try:
        import tensorflow as tf

        from numbpie.app import threads

        tf.config.threading.set_intra_op_parallelism_threads(threads.TF_THREADS)  # the product's policy
        tf.config.threading.set_inter_op_parallelism_threads(1)
        import detector
        from detector.export import export_graph
        from detector.model import SSDConfig, build_ssd

        config = SSDConfig()
        return detector.load(export_graph(build_ssd(config), config, Path(folder) / "random.pb")), None
    except Exception as error:  # the detector package is still landing; report, don't fail
        return None, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


def pipeline_rows(label: str, embedder, dataset: Path, runs: int, detector=None, editor=None,
                  tags: dict | None = None) -> list[dict]:
    """Index the catalog with `embedder` (images/s), then time `runs` street-photo queries per step."""
    from numbpie.app.indexer import index_catalog
    from numbpie.app.pipeline import Pipeline

    # the catalog stores image paths relative to its folder, so each embedder re-indexes in place
    start = time.perf_counter()
    index, _ = index_catalog(dataset, embedder, rebuild=True)
    index_s = time.perf_counter() - start
    pipeline = Pipeline.open(dataset, embedder=embedder, detector=detector, editor=editor)
    rows = _timed_queries(label, pipeline, sorted((dataset / "street").glob("*.jpg")), runs, tags)
    pipeline.catalog.close()
    rows.append({"config": label, "step": f"indexing {len(index)} products (images/s)",
                 "p50_ms": None, "p95_ms": None, "images_per_s": len(index) / index_s})
    return rows


def tagger(image) -> dict:
    """A fixed guess of the garment's current tags (no trained tagger yet), so edits can plan."""
    return {"category": "dress", "sleeve_length": "short", "fit": "normal", "neckline": "round",
            "length": "knee", "pattern": "solid"}


def style_editor():
    """A StyleEditor over random-weight StarGAN + CycleGAN (floral add), for the edit step."""
    from benchmarks.bench_gan import editors
    from gan import StyleEditor

    nets = editors()
    return StyleEditor(stargan=nets["stargan"], cyclegan={"floral_add": nets["cyclegan"]}, tagger=tagger)


def _timed_queries(label: str, pipeline, queries: list, runs: int, tags: dict | None = None) -> list[dict]:
    """Per-step and total p50/p95 of `runs` queries (after one warm-up), cycling through `queries`."""
    pipeline.search(queries[0], tags=tags)
    timings: dict[str, list] = {step: [] for step in STEPS}
    totals = []
    for i in range(runs):
        start = time.perf_counter()
        result = pipeline.search(queries[(i + 1) % len(queries)], tags=tags)
        totals.append(time.perf_counter() - start)
        for step, seconds in result.timings.items():
            timings.setdefault(step, []).append(seconds)
    rows = [{"config": label, "step": step, **percentiles(values)} for step, values in timings.items() if values]
    return rows + [{"config": label, "step": "total", **percentiles(totals)}]


def product_rows(runs: int, precision: str = "auto", thread_policy: bool = True,
                 catalog: Path | None = None) -> list[dict]:
    """The page's path: `open_pipeline` (bundled models, thread policy, precision) on demo street photos.

    Search alone, then with an edit (EDIT_TAGS). `catalog` None is the demo catalog, built on first
    use; `thread_policy` False leaves every framework's pool at its own default (the "before").
    """
    from numbpie.app import assemble, demo, threads

    if not thread_policy:
        threads.configure = lambda count=None: 0  # as before the policy: no pool is sized
    pipeline = assemble.open_pipeline(catalog, precision=precision)
    queries = sorted((Path(catalog or demo.default_folder()) / "street").glob("*.*"))[:50]
    pools = f"thread policy {threads.thread_count()}" if thread_policy else "default pools"
    label = f"{pipeline.embedder.name} {pipeline.embedder.input_size} px {pipeline.embedder.precision}, {pools}"
    rows = _timed_queries(f"page path: {label}", pipeline, queries, runs)
    if pipeline.editor is not None:
        edit = ", ".join(f"{key}={value}" for key, value in EDIT_TAGS.items())
        rows += _timed_queries(f"page path + edit ({edit}): {label}", pipeline, queries, max(3, runs // 2),
                               EDIT_TAGS)
    pipeline.catalog.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import os

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="timed queries (after one warm-up)")
    parser.add_argument("--precision", default="auto", help="auto (the product's default), fp32 or bf16")
    parser.add_argument("--no-thread-policy", action="store_true", help="leave every pool at its own size")
    parser.add_argument("--catalog", default=None, help="a catalog folder (default: the demo catalog)")
    args = parser.parse_args(argv)
    rows = product_rows(args.runs, args.precision, not args.no_thread_policy, args.catalog)
    print(json.dumps({"rows": rows, "load_average": os.getloadavg()[0]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
