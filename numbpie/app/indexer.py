"""Fill a catalog folder's index, crash-safely: vectors are saved before their rows commit.

Two kinds of work: catalog rows that have no vector yet (e.g. a synth dataset's catalog), and
new rows from an import source, which enter the catalog only once their vectors are saved.
Loading drops vectors whose rows never committed, so after a kill at any point the index
matches the catalog, and a rerun finishes the job with nothing lost or duplicated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from numbpie import images
from numbpie.catalog import Catalog
from numbpie.errors import CatalogError, IndexMismatchError
from numbpie.index import DEFAULT_FACTORY, Index

__all__ = ["CATALOG_FILE", "index_catalog", "open_catalog", "require_catalog"]

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
        return Index(embedder.dim, embedder.identity, factory)
    try:
        return Index.load(folder, embedder=embedder.identity, keep_ids=catalog.ids())
    except IndexMismatchError as error:
        raise IndexMismatchError(f"{error} Or pass --rebuild to start over.") from None


def _load_all(paths: Sequence, skipped: list[str]) -> list:
    """Each path's image, or None (with a message in `skipped`) where it cannot be read."""
    pictures = []
    for path in paths:
        try:
            pictures.append(images.load(path))
        except images.ImageError as error:
            pictures.append(None)
            skipped.append(f"skipped {path}: {error}")
    return pictures


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
) -> tuple[Index, list[str]]:
    """Embed catalog products without vectors, then import and embed new `rows`.

    `rows` are catalog rows `(image, title, category, attributes, metadata)`; those whose image
    is already in the catalog are skipped. Returns the index and messages: unreadable images
    (such products are left out), or an index too small to train yet. Safe to kill at any point and run again.
    """
    folder = Path(folder)
    catalog = open_catalog(folder)
    index = _open_index(folder, catalog, embedder, factory, rebuild)
    done = set(index.ids().tolist())
    missing = [i for i in catalog.ids() if i not in done]
    new = [row for row in rows if not catalog.has_image(row[0])]
    total, count, skipped = len(missing) + len(new), 0, []
    if progress:
        progress(0, total)
    for chunk in _chunks(missing, checkpoint_every):
        products = catalog.get(chunk)
        pictures = _load_all([p.image for p in products], skipped)
        _add(index, embedder, chunk, pictures)
        index.save(folder)
        catalog.remove([i for i, pic in zip(chunk, pictures, strict=True) if pic is None])
        count += len(chunk)
        if progress:
            progress(count, total)
    for chunk in _chunks(new, checkpoint_every):
        pictures = _load_all([row[0] for row in chunk], skipped)
        good = [row for row, pic in zip(chunk, pictures, strict=True) if pic is not None]
        # Fresh ids above every id ever used, so a vector left by a kill is never reused.
        first = max(catalog.max_id(), int(index.ids().max(initial=0))) + 1
        ids = list(range(first, first + len(good)))
        _add(index, embedder, ids, [pic for pic in pictures if pic is not None])
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


def _add(index: Index, embedder, ids: list[int], pictures: list) -> None:
    keep = [(i, pic) for i, pic in zip(ids, pictures, strict=True) if pic is not None]
    if keep:
        index.add(embedder.embed([pic for _, pic in keep]), [i for i, _ in keep])
