"""Per-step query latency through numbpie.app.pipeline.Pipeline on a small synthetic demo-like catalog."""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.common import percentiles

__all__ = ["make_catalog", "pipeline_rows", "random_detector"]

STEPS = ("load", "detect", "edit", "embed", "search", "lookup")


def make_catalog(folder: Path, products: int) -> Path:
    """A synth dataset (products + one street photo each) written into `folder`."""
    from numbpie.synth import write_dataset

    write_dataset(folder, products=products, street_per_product=1, seed=2026, progress=False)
    return folder


def random_detector(folder: Path):
    """The SSD detector exported with random weights (speed only), or None with the reason."""
    try:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(2)
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
    queries = sorted((dataset / "street").glob("*.jpg"))
    pipeline.search(queries[0], tags=tags)  # warm-up
    timings = {step: [] for step in STEPS}
    totals = []
    for i in range(runs):
        start = time.perf_counter()
        result = pipeline.search(queries[(i + 1) % len(queries)], tags=tags)
        totals.append(time.perf_counter() - start)
        for step, seconds in result.timings.items():
            timings[step].append(seconds)
    pipeline.catalog.close()
    rows = [{"config": label, "step": step, **percentiles(values)}
            for step, values in timings.items() if values]
    rows.append({"config": label, "step": "total", **percentiles(totals)})
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


