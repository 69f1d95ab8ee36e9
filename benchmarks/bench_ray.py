"""Indexing throughput: the single-process path next to `index --ray` with 1 and 2 actors.

    python -m benchmarks.bench_ray [--products 160] [--parts index,plan] [--out docs/benchmarks/ray.json]

Each config indexes two synth catalogs (PRODUCTS / 5 and PRODUCTS images) from scratch with
the bundled embedder; `images_per_s` is the marginal rate between the two, free of start-up,
`startup_s` the rest (for Ray: actors loading torch and the model), `wall_s` the larger run
(see `index_rows`). Also prints, for the plan in docs/scale.md: FAISS's bytes per
vector for its factories (from FAISS's own code sizes), the time of one index checkpoint at
10^4 and 10^5 flat vectors, and the speed of k-means for an IVF coarse quantizer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["checkpoint_rows", "code_size_rows", "index_rows", "ivf_train_row"]

FACTORIES = ("IDMap2,Flat", "IVF1024,SQ8", "IVF65536,SQ8", "IVF65536,PQ64", "IVF65536,PQ256",
             "IVF65536,PQ64,Refine(SQ8)")


def _wall(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def index_rows(small: Path, large: Path, actor_counts=(1, 2), batch_size: int = 16, checkpoint_every: int = 32,
               object_store_memory: int = 400 * 2**20) -> list[dict]:
    """One row for the single-process path, one per Ray actor count, all on one local Ray instance.

    Each config indexes the `small` and the `large` catalog from scratch. `images_per_s` is the
    marginal rate, (large - small images) / (difference of wall times): it cancels the start-up,
    which Ray Data's prefetch would otherwise hide inside the first checkpoints. `startup_s` is
    the small run's wall time less its images at that rate (for Ray: the actors loading torch
    and the model); `ray_init_s`, on the rows with actors, is starting the instance itself.
    """
    import logging

    import ray
    import torch

    from numbpie import embedder as embedders
    from numbpie.app.indexer import index_catalog, open_catalog
    from numbpie.app.ray_index import index_with_ray

    embedder = embedders.load("bundled")
    counts = {folder: len(open_catalog(folder)) for folder in (small, large)}

    def measure(index_one) -> dict:
        walls = {folder: _wall(lambda: index_one(folder)) for folder in (small, large)}
        rate = (counts[large] - counts[small]) / (walls[large] - walls[small])
        return {"images": counts[large], "wall_s": walls[large], "images_per_s": rate,
                "startup_s": walls[small] - counts[small] / rate}

    rows, threads = [], torch.get_num_threads()
    for count in sorted({1, threads}):  # 1 thread: what one actor gets
        torch.set_num_threads(count)
        rows.append({"config": f"single process ({count} torch thread{'s' * (count > 1)})", "actors": 0,
                     **measure(lambda folder: index_catalog(folder, embedder, rebuild=True,
                                                            checkpoint_every=checkpoint_every))})
    torch.set_num_threads(threads)
    ray_init_s = _wall(lambda: ray.init(address="local", num_cpus=max(os.cpu_count() or 1, *actor_counts),
                                        object_store_memory=object_store_memory, include_dashboard=False,
                                        log_to_driver=False, logging_level=logging.ERROR))
    try:
        for actors in actor_counts:
            rows.append({"config": f"--ray, {actors} actor{'s' * (actors > 1)} (1 CPU each)", "actors": actors,
                         "ray_init_s": ray_init_s,
                         **measure(lambda folder: index_with_ray(  # noqa: B023 (called at once)
                             folder, embedder, "bundled", actors=actors, batch_size=batch_size, rebuild=True,
                             checkpoint_every=checkpoint_every))})
    finally:
        ray.shutdown()
    return rows


def checkpoint_rows(sizes=(10_000, 100_000), dim: int = 2048) -> list[dict]:
    """Seconds of one `Index.save` (what `index_catalog` runs every --checkpoint-every images) by size.

    The save rewrites the whole index, so a build's checkpoints cost O(n^2) bytes in all; this
    is what docs/scale.md's plan for 10^6 products starts from.
    """
    import numpy as np

    from numbpie.index import Index

    rows = []
    rng = np.random.default_rng(0)
    for n in sizes:
        index = Index(dim, {"name": "bench", "sha256": "0", "input_size": 128})
        for start in range(0, n, 10_000):  # in chunks: one (n, dim) float64 draw would double the memory
            index.add(rng.standard_normal((min(10_000, n - start), dim), dtype=np.float32),
                      np.arange(start, min(start + 10_000, n)))
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
            seconds = []
            for _ in range(2):
                start = time.perf_counter()
                index.save(tmp)
                seconds.append(time.perf_counter() - start)
            size = Path(tmp, "index.faiss").stat().st_size
        rows.append({"n": n, "save_s": min(seconds), "file_mb": size / 2**20,
                     "mb_per_s": size / 2**20 / min(seconds)})
        del index
    return rows


def ivf_train_row(nlist: int = 1024, per_list: int = 40, dim: int = 2048, niter: int = 10) -> dict:
    """Seconds and effective GFLOP/s of FAISS k-means for an IVF coarse quantizer (one thread pool).

    Counted as niter x n x nlist x dim x 2 FLOP (the distance matmuls that dominate k-means).
    """
    import faiss
    import numpy as np

    n = per_list * nlist
    xt = np.random.default_rng(1).standard_normal((n, dim), dtype=np.float32)
    faiss.normalize_L2(xt)
    clustering = faiss.Clustering(dim, nlist)
    clustering.niter = niter
    clustering.max_points_per_centroid = per_list
    start = time.perf_counter()
    clustering.train(xt, faiss.IndexFlatIP(dim))
    seconds = time.perf_counter() - start
    return {"nlist": nlist, "train_points": n, "niter": niter, "train_s": seconds,
            "gflops": niter * n * nlist * dim * 2 / seconds / 1e9}


IDMAP2_PROBE = """
import faiss, numpy as np
def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * {page}
n = {n}
xb = np.zeros((n, 1), np.float32)
plain = faiss.IndexFlatIP(1)
plain.add(xb)
before = rss()
mapped = faiss.IndexIDMap2(faiss.IndexFlatIP(1))
mapped.add_with_ids(xb, np.arange(n, dtype=np.int64))
print((rss() - before) / n - 4)  # less the 4 bytes of the 1-d vector itself
"""


def idmap2_bytes_per_id(n: int = 1_000_000) -> float:
    """RAM per id of `IndexIDMap2` (its id array + the reverse hash map), from RSS in a fresh process.

    Fresh, because memory this process freed earlier would be reused and hide the growth.
    """
    import subprocess

    code = IDMAP2_PROBE.format(page=os.sysconf("SC_PAGE_SIZE"), n=n)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600)
    return float(out.stdout.strip())


def code_size_rows(dim: int = 2048) -> list[dict]:
    """Bytes per vector in numbpie's `Index` for each factory, from FAISS's own code sizes.

    `code_bytes`: what the index stores per vector (IVF list codes, + the refine codes);
    `id_bytes`: an IVF list's 8-byte id (IVF only) + IDMap2's id array and reverse map;
    `fixed_mb`: coarse centroids, independent of the count.
    """
    import faiss

    per_id = idmap2_bytes_per_id()
    rows = []
    for factory in FACTORIES:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.try_extract_index_ivf(index)
        code = ivf.code_size if ivf is not None else index.sa_code_size()
        if "Refine" in factory:
            code += faiss.downcast_index(index).refine_index.sa_code_size()
        ids = (8 if ivf is not None else 0) + per_id
        fixed = ivf.nlist * dim * 4 if ivf is not None else 0
        rows.append({"factory": factory, "code_bytes": code, "id_bytes": ids, "bytes_per_vector": code + ids,
                     "fixed_mb": fixed / 2**20})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=160, help="synth products to index (one image each)")
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
    parser.add_argument("--parts", default="index,plan",
                        help="index: the indexing rows; plan: index sizes, checkpoint and k-means figures")
    args = parser.parse_args()
    from benchmarks.common import machine
    from numbpie.synth import write_dataset

    parts = set(args.parts.split(","))
    load_before, rows, sizes, checkpoints, train = os.getloadavg()[0], [], [], [], None
    if "index" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            small, large = Path(tmp) / "small", Path(tmp) / "large"
            write_dataset(small, products=args.products // 5, street_per_product=0, seed=5, progress=False)
            write_dataset(large, products=args.products, street_per_product=0, seed=5, progress=False)
            load_before = os.getloadavg()[0]
            rows = index_rows(small, large)
    if "plan" in parts:
        sizes, checkpoints, train = code_size_rows(), checkpoint_rows(), ivf_train_row()
    load_after = os.getloadavg()[0]
    result = {"machine": {**machine(), "load_before": load_before, "load_after": load_after},
              "index": rows, "code_sizes": sizes, "checkpoints": checkpoints, "ivf_train": train}
    print("| config | images | images_per_s | startup_s | wall_s |\n|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['config']} | {row['images']} | {row['images_per_s']:.1f} | "
              f"{row['startup_s']:.1f} | {row['wall_s']:.1f} |")
    if rows:
        print(f"Ray instance start: {rows[-1]['ray_init_s']:.1f} s")
    print(f"load average {load_before:.1f} before, {load_after:.1f} after", file=sys.stderr)
    for row in sizes:
        print(f"{row['factory']:>28}: {row['code_bytes']} + {row['id_bytes']:.0f} = "
              f"{row['bytes_per_vector']:.0f} bytes/vector, {row['fixed_mb']:.0f} MiB fixed")
    for row in checkpoints:
        print(f"Index.save of {row['n']} flat vectors: {row['save_s']:.2f} s ({row['file_mb']:.0f} MiB, "
              f"{row['mb_per_s']:.0f} MiB/s)")
    if train:
        print(f"k-means for IVF{train['nlist']} on {train['train_points']} points, {train['niter']} "
              f"iterations: {train['train_s']:.1f} s, {train['gflops']:.0f} GFLOP/s")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
