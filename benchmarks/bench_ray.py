"""Indexing throughput: the single-process path next to `index --ray` with 1 and 2 actors.

    python -m benchmarks.bench_ray [--products 160] [--out docs/benchmarks/ray.json]

Each config indexes the same synth catalog from scratch (`rebuild`) with the bundled embedder.
`images_per_s` is the steady rate, timed from the first checkpoint to the last (what a long
run sees); `first_checkpoint_s` holds the start-up (Ray, actors loading their models), and
`wall_s` is the whole call. Also prints FAISS's bytes per vector for the factories in
docs/scale.md, from FAISS's own code sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["code_size_rows", "index_rows"]

FACTORIES = ("IDMap2,Flat", "IVF1024,SQ8", "IVF65536,SQ8", "IVF65536,PQ64", "IVF65536,PQ256",
             "IVF65536,PQ64,Refine(SQ8)")


def _timed(run) -> dict:
    """Run `run(progress)`; the wall time, the start-up to the first checkpoint, and the steady rate."""
    marks = []
    start = time.perf_counter()
    run(lambda done, total: marks.append((time.perf_counter() - start, done)))
    wall = time.perf_counter() - start
    moving = [(t, done) for t, done in marks if done > 0]
    (t0, d0), (t1, d1) = moving[0], moving[-1]
    return {"images": d1, "wall_s": wall, "first_checkpoint_s": t0,
            "images_per_s": (d1 - d0) / (t1 - t0) if t1 > t0 else None}


def index_rows(folder: Path, actor_counts=(1, 2), batch_size: int = 16, checkpoint_every: int = 32,
               object_store_memory: int = 400 * 2**20) -> list[dict]:
    """One row for the single-process path, one per Ray actor count (local instance)."""
    import torch

    from numbpie import embedder as embedders
    from numbpie.app.indexer import index_catalog
    from numbpie.app.ray_index import index_with_ray

    embedder = embedders.load("bundled")
    threads = torch.get_num_threads()
    rows = [{"config": f"single process ({threads} torch thread{'s' * (threads > 1)})", "actors": 0,
             **_timed(lambda progress: index_catalog(folder, embedder, rebuild=True, progress=progress,
                                                     checkpoint_every=checkpoint_every))}]
    for actors in actor_counts:
        rows.append({"config": f"--ray, {actors} actor{'s' * (actors > 1)} (1 CPU each)", "actors": actors,
                     **_timed(lambda progress: index_with_ray(
                         folder, embedder, "bundled", actors=actors, batch_size=batch_size, rebuild=True,
                         object_store_memory=object_store_memory, checkpoint_every=checkpoint_every,
                         progress=progress))})
    return rows


def idmap2_bytes_per_id(n: int = 1_000_000) -> float:
    """RAM per id of `IndexIDMap2` (its id array + the reverse hash map), from the process's RSS."""
    import faiss
    import numpy as np

    def rss() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    xb = np.zeros((n, 1), np.float32)
    plain = faiss.IndexFlatIP(1)
    plain.add(xb)
    before = rss()
    mapped = faiss.IndexIDMap2(faiss.IndexFlatIP(1))
    mapped.add_with_ids(xb, np.arange(n, dtype=np.int64))
    return (rss() - before) / n - 4  # less the 4 bytes of the 1-d vector itself


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
    args = parser.parse_args()
    from benchmarks.common import machine
    from numbpie.synth import write_dataset

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "catalog"
        write_dataset(folder, products=args.products, street_per_product=0, seed=5, progress=False)
        load_before = os.getloadavg()[0]
        rows = index_rows(folder)
        load_after = os.getloadavg()[0]
    sizes = code_size_rows()
    result = {"machine": {**machine(), "load_before": load_before, "load_after": load_after},
              "index": rows, "code_sizes": sizes}
    print("| config | images | images_per_s | first_checkpoint_s | wall_s |\n|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['config']} | {row['images']} | {row['images_per_s']:.1f} | "
              f"{row['first_checkpoint_s']:.1f} | {row['wall_s']:.1f} |")
    print(f"load average {load_before:.1f} before, {load_after:.1f} after", file=sys.stderr)
    for row in sizes:
        print(f"{row['factory']:>28}: {row['code_bytes']} + {row['id_bytes']:.0f} = "
              f"{row['bytes_per_vector']:.0f} bytes/vector, {row['fixed_mb']:.0f} MiB fixed")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
