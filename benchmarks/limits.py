"""The machine's limits: float32 (and bf16) matmul peak and memory read bandwidth, measured now."""

from __future__ import annotations

import time

import numpy as np
import torch

__all__ = ["bandwidth_rows", "best_gflops", "matmul_rows", "read_bandwidth"]


def _best_rate(call, work: float, runs: int) -> float:
    """work / fastest of `runs` timed calls (after one warm-up): the peak, not the average."""
    call()
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return work / best


def matmul_rows(threads=(1, 2), n: int = 2048, runs: int = 5) -> list[dict]:
    """GFLOP/s of an n x n x n matmul: torch fp32 and bf16 per thread count, numpy fp32 (its BLAS default)."""
    flops = 2.0 * n**3
    rows = []
    a32, b32 = torch.randn(n, n), torch.randn(n, n)
    a16, b16 = a32.bfloat16(), b32.bfloat16()
    saved = torch.get_num_threads()
    for t in threads:
        torch.set_num_threads(t)
        rows.append({"engine": "torch", "dtype": "float32", "threads": t,
                     "gflops": _best_rate(lambda: a32 @ b32, flops, runs) / 1e9})
        rows.append({"engine": "torch", "dtype": "bfloat16", "threads": t,
                     "gflops": _best_rate(lambda: a16 @ b16, flops, runs) / 1e9})
    torch.set_num_threads(saved)
    x, y = a32.numpy(), b32.numpy()
    rows.append({"engine": "numpy (OpenBLAS)", "dtype": "float32", "threads": "default",
                 "gflops": _best_rate(lambda: x @ y, flops, runs) / 1e9})
    return rows


def best_gflops(rows: list[dict], dtype: str = "float32", threads: int = 2) -> float:
    """The torch matmul peak for `dtype` on `threads` from matmul_rows."""
    return max(r["gflops"] for r in rows
               if r["engine"] == "torch" and r["dtype"] == dtype and r["threads"] == threads)


def read_bandwidth(gib: float = 1.0, threads: int = 2, runs: int = 5) -> float:
    """GB/s reading a float32 array far larger than the caches (a sum over it, torch threads)."""
    x = torch.ones(int(gib * 2**30) // 4)
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    rate = _best_rate(lambda: x.sum(), x.numel() * 4.0, runs) / 1e9
    torch.set_num_threads(saved)
    return rate


def bandwidth_rows(gib: float = 1.0, threads=(1, 2)) -> list[dict]:
    """Memory read bandwidth per thread count, plus numpy's single-threaded sum for comparison."""
    rows = [{"engine": "torch sum", "threads": t, "gb_per_s": read_bandwidth(gib, t)} for t in threads]
    x = np.ones(int(gib * 2**30) // 4, np.float32)
    rows.append({"engine": "numpy sum", "threads": 1,
                 "gb_per_s": _best_rate(lambda: x.sum(), x.nbytes, 5) / 1e9})
    return rows
