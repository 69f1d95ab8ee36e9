"""A FAISS cosine index over catalog product ids, saved atomically with a manifest.

Exact (flat) indexes are searched here with one BLAS product over FAISS's own storage: a
single query is a matrix-vector product (one pass over the vectors, at the memory's read
speed), a batch a matrix-matrix product. FAISS scans a single query on one thread at a third
of that speed; it still stores every index and searches the approximate ones (IVF, HNSW).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

import faiss
import numpy as np

from numbpie.errors import IndexMismatchError, OptionError

__all__ = ["DEFAULT_FACTORY", "PRECISIONS", "SEARCH_DEFAULTS", "Index", "IndexMismatchError", "normalize",
           "top_k"]

DEFAULT_FACTORY = "IDMap2,Flat"
# Search-time settings for approximate factories, from the recall/latency curves in
# docs/benchmarks.md; FAISS's own defaults (efSearch 16, nprobe 1) lose recall@5 on 2048-d.
SEARCH_DEFAULTS = {"HNSW": "efSearch=64", "IVF": "nprobe=16", "Refine": "k_factor_rf=8"}
INDEX_FILE = "index.faiss"
MANIFEST_FILE = "index.json"
_DIRECT_MAP_LOCK = threading.Lock()
PRECISIONS = ("fp32", "bf16")  # what the embedder computed the vectors in (they are stored as float32)
SCORE_BLOCK = 1 << 24  # scores (floats) held at once by a batched flat search: 64 MB


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm as contiguous float32 (zero rows stay zero).

    The one place numbpie normalises, so an inner product is always a cosine similarity.
    """
    xb = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
    norms = np.linalg.norm(xb, axis=1, keepdims=True)
    return xb / np.maximum(norms, 1e-12)


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest of each row of `scores` (nq, n), best first: `(values, positions)`.

    Ties keep the lower position first, as a stable sort of the whole row would.
    """
    n = scores.shape[1]
    part = np.argpartition(scores, n - k, axis=1)[:, n - k:] if k < n else np.broadcast_to(np.arange(n), scores.shape)
    values = np.take_along_axis(scores, part, 1)
    order = np.lexsort((part, -values), axis=1)
    return np.take_along_axis(values, order, 1), np.take_along_axis(part, order, 1)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a synced temp file and os.replace, so readers never see half."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class Index:
    """Cosine search over unit vectors keyed by catalog ids; built from a FAISS factory string."""

    def __init__(self, dim: int, embedder: dict, factory: str = DEFAULT_FACTORY, faiss_index=None,
                 staged: bool = False, precision: str = "fp32"):
        if precision not in PRECISIONS:
            raise OptionError(f"Unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}.")
        self.dim = dim
        self.embedder = dict(embedder)  # {"name": ..., "sha256": ...}
        self.factory = factory
        self.precision = precision  # the embedder's, recorded so queries of another one are checked first
        # Flat searches read FAISS's buffers in place; adding or removing may move them.
        self._lock = threading.Lock()
        index = faiss_index or self._build(dim, factory)
        # A factory that needs training (IVF, PQ) first collects vectors in an exact index;
        # `finish` trains it on all of them, not just on the first chunk added.
        self.staged = staged or not index.is_trained
        self._index = self._build(dim, DEFAULT_FACTORY) if not index.is_trained else index

    @staticmethod
    def _build(dim: int, factory: str):
        try:
            index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as error:
            raise OptionError(f"Bad FAISS factory string {factory!r}: {error}") from None
        params = ",".join(v for key, v in SEARCH_DEFAULTS.items() if key in factory)
        if params:  # saved with the index, so a loaded index searches the same way
            faiss.ParameterSpace().set_index_parameters(index, params)
        # IDMap2 maps FAISS's sequential ids to catalog ids and can reconstruct by id.
        return index if isinstance(index, faiss.IndexIDMap2) else faiss.IndexIDMap2(index)

    def __len__(self) -> int:
        return self._index.ntotal

    def ids(self) -> np.ndarray:
        """Every product id held, in insertion order."""
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def add(self, vectors: np.ndarray, ids) -> None:
        """Add vectors (normalised here) under their catalog ids."""
        xb = normalize(vectors)
        ids = np.asarray(ids, dtype=np.int64)
        if xb.shape != (len(ids), self.dim):
            raise ValueError(f"Expected {len(ids)} vectors of dimension {self.dim}, got {xb.shape}.")
        with self._lock:
            self._index.add_with_ids(xb, ids)

    def finish(self) -> str | None:
        """Train a staged index on every vector it holds and move them in.

        Returns a message when there are too few vectors to train the factory (search stays
        exact until a later `finish` with more); None otherwise.
        """
        if not self.staged or not len(self):
            return None
        target = self._build(self.dim, self.factory)
        vectors = faiss.downcast_index(self._index.index).reconstruct_n(0, len(self))
        try:
            target.train(vectors)
        except RuntimeError as error:
            return (f"Search stays exact for now: {len(self)} vectors are too few to train "
                    f"{self.factory} ({str(error).strip().splitlines()[-1][:120]}).")
        target.add_with_ids(vectors, self.ids())
        with self._lock:
            self._index, self.staged = target, False
        return None

    def search(self, vectors: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """Top-k `(scores, ids)` per query row; scores are cosines, ids -1 where fewer than k exist."""
        xq = normalize(vectors)
        if xq.shape[1] != self.dim:
            raise ValueError(f"Query vectors have dimension {xq.shape[1]}, the index {self.dim}.")
        k = max(1, min(k, len(self) or 1))
        with self._lock:
            flat = self._flat_storage()
            if flat is not None:
                return _flat_search(*flat, xq, k)
        return self._index.search(xq, k)

    def _flat_storage(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(vectors, ids): views of an exact index's float32 rows and catalog ids; None otherwise.

        Zero-copy views into FAISS's buffers, so only valid under `_lock`.
        """
        inner = faiss.downcast_index(self._index.index)
        if not (isinstance(inner, faiss.IndexFlat) and inner.metric_type == faiss.METRIC_INNER_PRODUCT
                and inner.ntotal):
            return None
        n = inner.ntotal
        xb = faiss.rev_swig_ptr(inner.get_xb(), n * self.dim).reshape(n, self.dim)
        return xb, faiss.rev_swig_ptr(self._index.id_map.data(), n)

    def manifest(self) -> dict:
        return {
            "embedder": self.embedder,
            "dim": self.dim,
            "count": len(self),
            "factory": self.factory,
            "staged": self.staged,
            "precision": self.precision,
            "faiss_version": faiss.__version__,
        }

    def save(self, folder: str | Path) -> None:
        """Write `index.faiss` then `index.json`, each atomically (the vectors file is the truth)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(folder / INDEX_FILE, faiss.serialize_index(self._index).tobytes())
        _atomic_write(folder / MANIFEST_FILE, json.dumps(self.manifest(), indent=2).encode())

    @staticmethod
    def read_manifest(folder: str | Path) -> dict:
        """The manifest of a saved index (embedder, dim, count, factory, precision, faiss version)."""
        path = Path(folder) / MANIFEST_FILE
        if not path.exists():
            raise IndexMismatchError(
                f"No index in {folder}. Build it with: python -m numbpie index SOURCE --catalog {folder}"
            )
        return json.loads(path.read_text())

    def vectors(self, ids) -> np.ndarray:
        """The vectors held for catalog `ids`, float32 (N, dim); approximate for compressed factories.

        An id the index does not hold is a KeyError.
        """
        ivf = faiss.try_extract_index_ivf(self._index.index)
        if ivf is not None and ivf.direct_map.type == faiss.DirectMap.NoMap:
            with _DIRECT_MAP_LOCK:  # IVF finds a vector by id only through this map, built once
                if ivf.direct_map.type == faiss.DirectMap.NoMap:
                    ivf.make_direct_map()
        rows = []
        for i in ids:
            try:
                rows.append(self._index.reconstruct(int(i)))
            except RuntimeError:
                raise KeyError(f"Product id {int(i)} is not in the index.") from None
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), self.dim)

    def keep_only(self, ids) -> int:
        """Drop vectors whose id is not in `ids`; returns how many were dropped."""
        stale = np.setdiff1d(self.ids(), np.fromiter(ids, np.int64))
        if not stale.size:
            return 0
        with self._lock:
            return self._index.remove_ids(stale)

    @classmethod
    def load(
        cls, folder: str | Path, embedder: dict | None = None, count: int | None = None,
        keep_ids=None,
    ) -> Index:
        """Load a saved index; refuse one built by another embedder or not matching `count`.

        `keep_ids` (the catalog's ids) drops vectors whose product row never committed: the
        indexer saves vectors before it commits their rows, so a kill in between leaves extras.
        """
        folder = Path(folder)
        rebuild = f"Rebuild it with: python -m numbpie index SOURCE --catalog {folder}"
        meta = cls.read_manifest(folder)
        try:
            data = np.fromfile(folder / INDEX_FILE, dtype=np.uint8)
            index = faiss.deserialize_index(data)
        except FileNotFoundError:
            raise IndexMismatchError(f"No index in {folder}. {rebuild}") from None
        except (RuntimeError, ValueError) as error:
            raise IndexMismatchError(f"The index in {folder} is unreadable ({error}). {rebuild}") from None
        # Both files are written atomically, index.faiss first: a kill between the two leaves a
        # manifest one save behind (its count), so the vectors file is the one to trust.
        if index.d != meta["dim"]:
            raise IndexMismatchError(f"The index in {folder} does not match its manifest. {rebuild}")
        if embedder is not None and meta["embedder"] != embedder:
            raise IndexMismatchError(
                f"The index in {folder} was built with embedder {meta['embedder']}, not "
                f"{embedder}. {rebuild} --embedder {embedder['name']}"
            )
        inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index
        staged = isinstance(inner, faiss.IndexFlat) and not cls._build(meta["dim"], meta["factory"]).is_trained
        # Indexes from before the precision was recorded were all embedded in fp32.
        loaded = cls(meta["dim"], meta["embedder"], meta["factory"], faiss_index=index, staged=staged,
                     precision=meta.get("precision", "fp32"))
        if keep_ids is not None:
            loaded.keep_only(keep_ids)
        if count is not None and count != len(loaded):
            raise IndexMismatchError(
                f"The index in {folder} holds {len(loaded)} vectors but the catalog has "
                f"{count} products. Finish it with: python -m numbpie index SOURCE --catalog {folder}"
            )
        return loaded


def _flat_search(xb: np.ndarray, ids: np.ndarray, xq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k `(D, I)` of unit queries `xq` over rows `xb` keyed by `ids`.

    One query is one matrix-vector product, a single pass over `xb`; a batch is one
    matrix-matrix product per block of queries, so the scores held stay under SCORE_BLOCK.
    """
    if len(xq) == 1:
        D, P = top_k((xb @ xq[0])[None], k)
        return D, ids[P]
    D, I = np.empty((len(xq), k), np.float32), np.empty((len(xq), k), np.int64)
    step = max(1, SCORE_BLOCK // len(xb))
    for start in range(0, len(xq), step):
        D[start:start + step], P = top_k(xq[start:start + step] @ xb.T, k)
        I[start:start + step] = ids[P]
    return D, I
