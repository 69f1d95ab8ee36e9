"""Fill a catalog folder's index: embed every product not indexed yet, checkpointing as it goes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from numbpie import images
from numbpie.catalog import Catalog
from numbpie.index import DEFAULT_FACTORY, Index, IndexMismatchError

__all__ = ["CATALOG_FILE", "index_catalog", "open_catalog"]

CATALOG_FILE = "catalog.sqlite"


def open_catalog(folder: str | Path) -> Catalog:
    """The catalog of a catalog folder (created empty if absent)."""
    return Catalog(Path(folder) / CATALOG_FILE)


def _resume_or_create(folder: Path, embedder, factory: str, rebuild: bool) -> Index:
    if not rebuild and (folder / "index.json").exists():
        return Index.load(folder, embedder=embedder.identity)  # refuses another embedder
    return Index(embedder.dim, embedder.identity, factory)


def index_catalog(
    folder: str | Path,
    embedder,
    factory: str = DEFAULT_FACTORY,
    rebuild: bool = False,
    checkpoint_every: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Index, list[str]]:
    """Embed catalog products missing from the index and save it after every chunk.

    Returns the index and the messages for images that could not be read (those products
    are dropped from the catalog so that index and catalog stay equal). Safe to kill and rerun.
    """
    folder = Path(folder)
    catalog = open_catalog(folder)
    try:
        index = _resume_or_create(folder, embedder, factory, rebuild)
    except IndexMismatchError as error:
        raise IndexMismatchError(f"{error} Or pass --rebuild to start over.") from None
    done = set(index.ids().tolist())
    todo = [i for i in catalog.ids() if i not in done]
    skipped: list[str] = []
    if progress:
        progress(0, len(todo))
    for start in range(0, len(todo), checkpoint_every):
        products = catalog.get(todo[start:start + checkpoint_every])
        loaded, bad = [], []
        for product in products:
            try:
                loaded.append((product.id, images.load(product.image)))
            except images.ImageError as error:
                bad.append(product.id)
                skipped.append(f"{product.image}: {error}")
        if loaded:
            ids, pictures = zip(*loaded, strict=True)
            index.add(embedder.embed(list(pictures)), list(ids))
        catalog.remove(bad)
        index.save(folder)
        if progress:
            progress(start + len(products), len(todo))
    if not todo and not (folder / "index.json").exists():
        index.save(folder)
    return index, skipped
