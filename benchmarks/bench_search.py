"""Index scale: latency, recall@5 against exact search and bytes per vector for Flat, HNSW and IVF-PQ.

Vectors are synthetic 2048-d unit rows made in chunks (10^6 x 2048 float32 is 8 GB, so no step
holds more than the index itself): `clustered` rows lie near a 64-d subspace in 1,000 clusters,
as CNN embeddings of a catalog do, so approximate search has structure to exploit; `random` rows
are isotropic Gaussian, the worst case, where every neighbour is about equally far.
"""

from __future__ import annotations

import time

import faiss
import numpy as np
import torch

from benchmarks.common import percentiles

__all__ = ["VectorSource", "exact_search", "flat_reference_rows", "index_bytes", "recall_at_k",
           "search_rows"]


class VectorSource:
    """Deterministic unit vectors, produced chunk by chunk (the same rows for the same start)."""

    def __init__(self, kind: str = "clustered", dim: int = 2048, clusters: int = 1000,
                 latent: int = 64, spread: float = 0.6, noise: float = 0.5, seed: int = 0):
        if kind not in ("clustered", "random"):
            raise ValueError(f"kind must be 'clustered' or 'random', not {kind!r}.")
        self.kind, self.dim, self.seed = kind, dim, seed
        g = torch.Generator().manual_seed(seed)
        self.centers = torch.randn(clusters, latent, generator=g)
        self.basis = torch.linalg.qr(torch.randn(dim, latent, generator=g)).Q.T.contiguous()
        self.spread = spread
        # isotropic noise carrying `noise` times the norm of the subspace part
        self.sigma = noise * (latent * (1 + spread**2)) ** 0.5 / dim**0.5

    def rows(self, start: int, count: int) -> np.ndarray:
        """Rows start..start+count as contiguous float32 (count, dim), L2-normalised."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + start + 1)
        if self.kind == "random":
            x = torch.randn(count, self.dim, generator=g)
        else:
            labels = torch.randint(len(self.centers), (count,), generator=g)
            z = self.centers[labels] + self.spread * torch.randn(count, self.centers.shape[1], generator=g)
            x = z @ self.basis + self.sigma * torch.randn(count, self.dim, generator=g)
        x /= x.norm(dim=1, keepdim=True)
        return x.numpy()

    def chunks(self, n: int, chunk: int = 50_000):
        """(start, rows) over the first n rows."""
        for start in range(0, n, chunk):
            yield start, self.rows(start, min(chunk, n - start))

    def queries(self, nq: int) -> np.ndarray:
        """Query rows from the same distribution, never in the database."""
        return self.rows(10**12, nq)


def exact_search(source: VectorSource, n: int, xq: np.ndarray, k: int) -> np.ndarray:
    """Exact inner-product top-k ids over n rows, chunk by chunk (never holds all of them)."""
    heap = faiss.ResultHeap(len(xq), k, keep_max=True)
    for start, xb in source.chunks(n):
        D, I = faiss.knn(xq, xb, k, metric=faiss.METRIC_INNER_PRODUCT)
        heap.add_result(D, I + start)
    heap.finalize()
    return heap.I


def recall_at_k(I: np.ndarray, gt: np.ndarray, k: int) -> float:
    """Mean fraction of the exact top-k found in the returned top-k."""
    return float(np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(I, gt, strict=True)]))


def index_bytes(index) -> int:
    """Serialised size of an index (what it holds in memory, to within headers), counted not stored."""
    total = [0]

    def count(data: bytes) -> int:
        total[0] += len(data)
        return len(data)

    faiss.write_index(index, faiss.PyCallbackIOWriter(count))
    return total[0]


def _single_queries(index, xq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """One query at a time, as the app does: (seconds per query, ids)."""
    index.search(xq[:1], k)  # warm-up
    seconds, ids = np.empty(len(xq)), np.empty((len(xq), k), np.int64)
    for i in range(len(xq)):
        start = time.perf_counter()
        _, I = index.search(xq[i:i + 1], k)
        seconds[i] = time.perf_counter() - start
        ids[i] = I[0]
    return seconds, ids


def _build(factory: str, source: VectorSource, n: int, train_size: int):
    index = faiss.index_factory(source.dim, factory, faiss.METRIC_INNER_PRODUCT)
    inner = faiss.downcast_index(index)
    ivf = faiss.try_extract_index_ivf(inner.base_index if isinstance(inner, faiss.IndexRefine) else index)
    if ivf is not None and hasattr(ivf, "pq"):
        # The factory turns on polysemous training (minutes on 2048-d, for Hamming filtering
        # we never use); PQ k-means runs 10 iterations over at most 4,096 points per slice.
        ivf = faiss.downcast_index(ivf)
        ivf.do_polysemous_training = False
        ivf.pq.cp.niter, ivf.pq.cp.max_points_per_centroid = 10, 16
    start = time.perf_counter()
    if not index.is_trained:
        index.train(source.rows(0, min(n, train_size)))
    for _, xb in source.chunks(n):
        index.add(xb)
    return index, time.perf_counter() - start


def _mem_available() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable"):
                return int(line.split()[1]) * 1024
    return 0


def search_rows(n: int, kind: str = "clustered", nq: int = 100, k: int = 5,
                efs=(16, 32, 64, 128), nprobes=(1, 4, 16, 64), pq_m: int = 64,
                hnsw: bool = True, flat: bool = True, flat_nq: int | None = None,
                sq8: bool = True) -> list[dict]:
    """Rows (index, factory, param, p50/p95 ms per single query, recall@k, bytes/vector, build s).

    IVF rows come with their own codes (PQ or, with `sq8`, 8-bit scalar) and with a rerank of a
    k_factor_rf-times-longer shortlist on finer codes (Refine).
    """
    source = VectorSource(kind)
    xq = source.queries(nq)
    gt = exact_search(source, n, xq, k)
    rows = []

    def row(name, factory, param, index, seconds, ids, nbytes, build_s):
        rows.append({"data": kind, "n": n, "index": name, "factory": factory, "param": param,
                     **percentiles(seconds), f"recall_at_{k}": recall_at_k(ids, gt, k),
                     "bytes_per_vector": nbytes / n, "build_s": build_s})

    if flat and _mem_available() > 1.5 * n * source.dim * 4:
        index, build_s = _build("Flat", source, n, 0)
        # exact by definition; few queries suffice for its latency at 10^6 (about 1 s each)
        seconds, ids = _single_queries(index, xq[:flat_nq or nq], k)
        rows.append({"data": kind, "n": n, "index": "Flat", "factory": "Flat", "param": "",
                     **percentiles(seconds), f"recall_at_{k}": 1.0,
                     "bytes_per_vector": index_bytes(index) / n, "build_s": build_s})
        del index
    if hnsw:
        index, build_s = _build("HNSW32,Flat", source, n, 0)
        nbytes = index_bytes(index)
        for ef in efs:
            faiss.ParameterSpace().set_index_parameter(index, "efSearch", ef)
            seconds, ids = _single_queries(index, xq, k)
            row("HNSW", "HNSW32,Flat", f"efSearch={ef}", index, seconds, ids, nbytes, build_s)
        del index
    nlist = 256 if n <= 20_000 else 1024
    codes = [(f"PQ{pq_m}", "SQ8", 8)] + ([("SQ8", "SQfp16", 4)] if sq8 else [])
    for code, rerank, k_factor in codes:
        name = "IVF-PQ" if code.startswith("PQ") else f"IVF-{code}"
        factory = f"IVF{nlist},{code},Refine({rerank})"
        index, build_s = _build(factory, source, n, train_size=max(40 * nlist, 10_000))
        base = faiss.downcast_index(index.base_index)
        base_bytes, all_bytes = index_bytes(base), index_bytes(index)
        for nprobe in nprobes:
            base.nprobe = nprobe
            seconds, ids = _single_queries(base, xq, k)
            row(name, f"IVF{nlist},{code}", f"nprobe={nprobe}", base, seconds, ids, base_bytes, build_s)
        for nprobe in nprobes[1:]:
            param = f"nprobe={nprobe},k_factor_rf={k_factor}"
            faiss.ParameterSpace().set_index_parameters(index, param)
            seconds, ids = _single_queries(index, xq, k)
            row(f"{name} + {rerank} rerank", factory, param, index, seconds, ids, all_bytes, build_s)
        del index, base
    return rows


def flat_reference_rows(n: int = 139_709, dim: int = 2048, runs: int = 50, threads=(1, 2),
                        product_threads: int | None = None) -> list[dict]:
    """One query over n x dim float32, exhaustively: numbpie's `Index.search` first, as `numbpie index`
    builds it by default (IDMap2,Flat) and with the product's thread policy; then, labelled as
    comparisons, FAISS searching that same index per thread count and numpy's `xb @ q` on its vectors.

    Every row carries `of_bandwidth`: its GB/s over the read bandwidth measured just before it
    (`benchmarks.limits.read_bandwidth`, same thread count), as the issue asks for the ratio beside it.
    """
    from benchmarks.limits import read_bandwidth
    from numbpie.app import threads as policy
    from numbpie.index import DEFAULT_FACTORY, Index

    source = VectorSource("clustered", dim=dim)
    index = Index(dim, {"name": "bench", "sha256": "-"}, DEFAULT_FACTORY)
    for start, rows in source.chunks(n):  # one copy of the vectors: the index's own
        index.add(rows, np.arange(start, start + len(rows)))
    xq = source.queries(runs)
    nbytes, rows = n * dim * 4, []

    def row(engine, t, seconds, bandwidth):
        p = percentiles(seconds)
        gb_per_s = nbytes / p["p50_ms"] * 1e3 / 1e9
        rows.append({"n": n, "dim": dim, "engine": engine, "threads": t, **p, "gb_per_s": gb_per_s,
                     "read_gb_per_s": bandwidth, "of_bandwidth": gb_per_s / bandwidth})

    t = policy.configure(product_threads)  # None: the product's default (NUMBPIE_THREADS or every core)
    bandwidth = read_bandwidth(1.0, t)
    seconds, _ = _single_queries(index, xq, 5)
    row(f"numbpie Index.search ({DEFAULT_FACTORY}): the product's path", t, seconds, bandwidth)
    saved = faiss.omp_get_max_threads()
    for t in threads:
        faiss.omp_set_num_threads(t)
        bandwidth = read_bandwidth(1.0, t)
        seconds, _ = _single_queries(index._index, xq, 5)
        row("comparison: FAISS IndexIDMap2(IndexFlatIP).search", t, seconds, bandwidth)
    faiss.omp_set_num_threads(saved)
    xb = index._flat_storage()[0]

    def numpy_search(q):
        scores = xb @ q
        top = np.argpartition(-scores, 5)[:5]
        return top[np.argsort(-scores[top])]

    t = policy.configure(product_threads)
    bandwidth = read_bandwidth(1.0, t)
    row("comparison: numpy xb @ q + argpartition", t,
        np.array([_timed(numpy_search, q) for q in xq]), bandwidth)
    return rows


def _timed(call, arg) -> float:
    start = time.perf_counter()
    call(arg)
    return time.perf_counter() - start
