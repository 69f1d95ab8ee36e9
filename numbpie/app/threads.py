"""One thread policy for the product: every framework's pool sized together, once, where models are assembled.

torch (the embedder, the GANs, the tagger), FAISS's OpenMP, the BLAS that scans flat indexes
and TensorFlow (the detector) each start a pool as large as the machine by default. A query
runs them one after another, and under concurrent requests (the HTTP API) they run at once:
pools that together ask for several times the cores only trade places. So torch, FAISS and the
BLAS get the same size, the machine's usable cores or `NUMBPIE_THREADS`. TensorFlow runs one op
at a time on one thread (`TF_THREADS`): the bundled detector's ops on a 192 px input are too
short to split, so on the 2-core machine one thread detects faster than two (p50 6-7 ms against
7-9 ms per 640x480 photo, `benchmarks/bench_detector.py --threads 1|2`; 6.5-8 ms against 10-12 ms
inside the page's path), and the core it leaves free is torch's.

This module imports torch and FAISS only to size their pools; no tensor crosses here.
"""

from __future__ import annotations

import os
import sys

from threadpoolctl import threadpool_limits

from numbpie.errors import OptionError

__all__ = ["ENV", "TF_THREADS", "configure", "thread_count"]

ENV = "NUMBPIE_THREADS"
TF_THREADS = 1  # TensorFlow's intra-op pool (its inter-op pool is 1 too): see above
_applied: int | None = None


def thread_count() -> int:
    """`NUMBPIE_THREADS` if set, else the cores this process may run on."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1
    try:
        threads = int(text)
    except ValueError:
        threads = 0
    if threads < 1:
        raise OptionError(f"{ENV} must be a whole number of threads, at least 1, not {text!r}.")
    return threads


def configure(threads: int | None = None) -> int:
    """Size torch, FAISS and BLAS pools to `threads` (default `thread_count()`) and TensorFlow's; returns `threads`.

    Cheap to call again: a size already applied is left alone. TensorFlow fixes its pools when it
    runs its first op, so it is sized through its environment variables while not yet imported.
    """
    global _applied
    threads = thread_count() if threads is None else threads
    if threads == _applied:
        return threads
    import faiss
    import torch

    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)
    threadpool_limits(threads, user_api="blas")  # numpy's BLAS: the flat index scan
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(TF_THREADS)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # it has run ops already; its pools stay as they are
            pass
    else:
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(TF_THREADS)
        os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    _applied = threads
    return threads
