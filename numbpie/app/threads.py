"""One thread policy for the product: every framework's pool sized together, once, where models are assembled.

torch (the embedder, the GANs, the tagger), FAISS's OpenMP, the BLAS that scans flat indexes
and TensorFlow (the detector) each start a pool as large as the machine by default. A query
runs them one after another, and under concurrent requests (the HTTP API) they run at once:
pools that together ask for several times the cores only trade places. So each gets the same
size, the machine's usable cores or `NUMBPIE_THREADS`, and TensorFlow runs one op at a time.

This module imports torch and FAISS only to size their pools; no tensor crosses here.
"""

from __future__ import annotations

import os
import sys

from threadpoolctl import threadpool_limits

from numbpie.errors import OptionError

__all__ = ["ENV", "configure", "thread_count"]

ENV = "NUMBPIE_THREADS"
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
    """Size torch, FAISS, BLAS and TensorFlow pools to `threads` (default `thread_count()`); returns it.

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
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # it has run ops already; its pools stay as they are
            pass
    else:
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
        os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    _applied = threads
    return threads
