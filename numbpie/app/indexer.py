"""Fill a catalog folder's index, crash-safely: vectors are saved before their rows commit.

Two kinds of work: catalog rows that have no vector yet (e.g. a synth dataset's catalog), and
new rows from an import source, which enter the catalog only once their vectors are saved.
Loading drops vectors whose rows never committed, so after a kill at any point the index
matches the catalog, and a rerun finishes the job with nothing lost or duplicated.
Where the images are embedded is pluggable (`embed_paths`): here by default, or on a Ray
cluster (`numbpie.app.ray_index`); the bookkeeping above is the same for both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from numbpie import images
from numbpie.catalog import Catalog
from numbpie.embedder import matching
from numbpie.errors import CatalogError, IndexMismatchError
from numbpie.index import DEFAULT_FACTORY, Index

__all__ = ["CATALOG_FILE", "index_catalog", "open_catalog", "read_image", "require_catalog"]

CATALOG_FILE = "catalog.sqlite"


def open_catalog(folder: str | Path) -> Catalog:
    """The catalog of a catalog folder (created empty if absent)."""
    return Catalog(Path(folder) / CATALOG_FILE)


def require_catalog(folder: str | Path) -> None:
    """Raise CatalogError, naming the command that builds one, unless `folder` holds a catalog."""
    if not (Path(folder) / CATALOG_FILE).exists():
        raise CatalogError(f"No catalog in {folder}. Build one with: python -m numbpie index SOURCE --catalog {folder}")


def _open_index(folder: Path, catalog: Catalog, embedder, factory: str, rebuild: bool) -> Index:
    if rebuild or not (folder / "index.json").exists():
        return Index(embedder.dim, embedder.identity, factory, precision=embedder.precision)
    try:
        return Index.load(folder, embedder=embedder.identity, keep_ids=catalog.ids())
    except IndexMismatchError as error:
        raise IndexMismatchError(f"{error} Or pass --rebuild to start over.") from None


def read_image(path) -> tuple:
    """`(image, "")`, or `(None, why)` where the file cannot be used: one rule for every embedding path."""
    try:
        return images.load(path), ""
    except images.ImageError as error:
        return None, str(error)


def _embed_here(size: int) -> Callable[[Sequence, object], Iterator[tuple]]:
    """`embed_paths` that loads and embeds `size` images at a time in this process: the reference."""
    def embed_paths(paths: Sequence, embedder) -> Iterator[tuple]:
        for chunk in _chunks(list(paths), size):
            loaded = [read_image(path) for path in chunk]
            vectors = iter(embedder.embed([pic for pic, _ in loaded if pic is not None]))
            for pic, why in loaded:
                yield (next(vectors) if pic is not None else None), why
    return embed_paths


def _take(embedded: Iterator[tuple], paths: Sequence, skipped: list[str]) -> tuple[list, list[bool]]:
    """The next `len(paths)` results: the vectors of readable images and, per path, whether it was."""
    vectors, ok = [], []
    for path in paths:
        vector, why = next(embedded)
        if vector is None:
            skipped.append(f"skipped {path}: {why}")
        else:
            vectors.append(vector)
        ok.append(vector is not None)
    return vectors, ok


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def index_catalog(
    folder: str | Path,
    embedder,
    rows: Sequence[tuple] = (),
    factory: str = DEFAULT_FACTORY,
    rebuild: bool = False,
    checkpoint_every: int = 128,
    progress: Callable[[int, int], None] | None = None,
    embed_paths: Callable[[Sequence, object], Iterable[tuple]] | None = None,
) -> tuple[Index, list[str]]:
    """Embed catalog products without vectors, then import and embed new `rows`.

    `rows` are catalog rows `(image, title, category, attributes, metadata)`; those whose image
    is already in the catalog are skipped. Returns the index and messages: unreadable images
    (such products are left out), or an index too small to train yet. Safe to kill at any point and run again.
    `embed_paths(paths, embedder)`, when given, embeds elsewhere with the same network in
    `embedder.precision`: it yields `(vector, "")` or `(None, why)` per path, in order.
    """
    folder = Path(folder)
    catalog = open_catalog(folder)
    index = _open_index(folder, catalog, embedder, factory, rebuild)
    embedder = matching(embedder, index, catalog)  # new vectors in the index's precision, unless they agree
    done = set(index.ids().tolist())
    missing = [i for i in catalog.ids() if i not in done]
    new = [row for row in rows if not catalog.has_image(row[0])]
    total, count, skipped = len(missing) + len(new), 0, []
    if progress:
        progress(0, total)
    # Fetched 500 at a time: SQLite caps the parameters of one query.
    paths = [p.image for part in _chunks(missing, 500) for p in catalog.get(part)] + [row[0] for row in new]
    embedded = iter((embed_paths or _embed_here(checkpoint_every))(paths, embedder) if paths else ())
    for chunk in _chunks(missing, checkpoint_every):
        vectors, ok = _take(embedded, paths[count:count + len(chunk)], skipped)
        _add(index, vectors, [i for i, good in zip(chunk, ok, strict=True) if good])
        index.save(folder)
        catalog.remove([i for i, good in zip(chunk, ok, strict=True) if not good])
        count += len(chunk)
        if progress:
            progress(count, total)
    for chunk in _chunks(new, checkpoint_every):
        vectors, ok = _take(embedded, paths[count:count + len(chunk)], skipped)
        good = [row for row, keep in zip(chunk, ok, strict=True) if keep]
        # Fresh ids above every id ever used, so a vector left by a kill is never reused.
        first = max(catalog.max_id(), int(index.ids().max(initial=0))) + 1
        ids = list(range(first, first + len(good)))
        _add(index, vectors, ids)
        index.save(folder)
        catalog.add_many(good, ids=ids)
        count += len(chunk)
        if progress:
            progress(count, total)
    was_staged = index.staged
    message = index.finish()  # trains an IVF/PQ index on everything, once everything is in
    if message:
        skipped.append(message)
    if was_staged != index.staged or _manifest_is_stale(folder, index):
        index.save(folder)
    return index, skipped


def _manifest_is_stale(folder: Path, index: Index) -> bool:
    """No manifest yet, or one a kill left a save behind the vectors file."""
    try:
        return Index.read_manifest(folder) != index.manifest()
    except IndexMismatchError:
        return True


def _add(index: Index, vectors: list, ids: list[int]) -> None:
    if ids:
        index.add(np.stack(vectors), ids)
