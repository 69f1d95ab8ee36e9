"""Shared helpers: thread settings, timing, percentiles, and what machine the figures came from."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

import numpy as np

__all__ = ["configure_threads", "machine", "percentiles", "time_calls"]


def configure_threads(threads: int) -> None:
    """One pool size for torch, FAISS (OpenMP), BLAS and TensorFlow: the product's own policy.

    `numbpie.app.threads.configure`, which every front end runs where its models are assembled.
    """
    from numbpie.app import threads as policy

    policy.configure(threads)


def time_calls(call: Callable[[], object], runs: int, warmup: int = 1) -> np.ndarray:
    """Wall seconds of `runs` calls of `call` after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        call()
        times[i] = time.perf_counter() - start
    return times


def percentiles(seconds) -> dict:
    """p50 and p95 in milliseconds."""
    ms = np.asarray(seconds, dtype=float) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95))}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """CPU, core count, library versions and the load average, to print beside every figure."""
    import faiss
    import torch

    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = cpuinfo.read()
    except OSError:
        flags = ""
    return {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "isa": " ".join(f for f in ("avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni") if f in flags),
        "torch": torch.__version__,
        "faiss": faiss.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
