"""The product catalog: one SQLite file of products, plus importers from folders and CSV files."""

from __future__ import annotations

import csv
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from numbpie.errors import CatalogError

__all__ = [
    "IMAGE_SUFFIXES", "Catalog", "CatalogError", "Product",
    "csv_rows", "folder_rows", "import_csv", "import_folder",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    id INTEGER PRIMARY KEY,
    image TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    category TEXT NOT NULL DEFAULT '',
    attributes TEXT NOT NULL DEFAULT '{}',
    metadata TEXT NOT NULL DEFAULT '{}'
)
"""


@dataclass(frozen=True)
class Product:
    """One catalog row; `image` is an absolute path."""

    id: int
    image: str
    title: str
    category: str = ""
    attributes: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)


class Catalog:
    """A SQLite product table. Image paths inside the catalog's folder are stored relative to it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.root = self.path.parent
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            self._db.execute(_SCHEMA)
            self._db.commit()
        except sqlite3.DatabaseError as error:
            raise CatalogError(f"{self.path} is not a numbpie catalog ({error}).") from None

    def add(
        self,
        image: str | Path,
        title: str,
        category: str = "",
        attributes: dict | None = None,
        metadata: dict | None = None,
    ) -> int:
        """Add a product and return its id; an image already in the catalog keeps its old id."""
        return self.add_many([(image, title, category, attributes or {}, metadata or {})])[0]

    def add_many(self, rows: Iterable[tuple], ids: Iterable[int] | None = None) -> list[int]:
        """Add `(image, title, category, attributes, metadata)` rows in one transaction.

        `ids`, when given, are the ids to use (the indexer reserves them before it commits).
        """
        out = []
        ids = iter(ids) if ids is not None else None
        with self._lock, self._db:
            for image, title, category, attributes, metadata in rows:
                key = self._relative(image)
                self._db.execute(
                    "INSERT OR IGNORE INTO products (id, image, title, category, attributes, metadata)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (next(ids) if ids else None, key, title, category, json.dumps(attributes),
                     json.dumps(metadata)),
                )
                (row_id,) = self._db.execute(
                    "SELECT id FROM products WHERE image = ?", (key,)
                ).fetchone()
                out.append(row_id)
        return out

    def has_image(self, image: str | Path) -> bool:
        """Whether a product with this image file is in the catalog."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM products WHERE image = ?", (self._relative(image),))
            return row.fetchone() is not None

    def max_id(self) -> int:
        """The largest product id (0 for an empty catalog)."""
        with self._lock:
            return self._db.execute("SELECT COALESCE(MAX(id), 0) FROM products").fetchone()[0]

    def get(self, ids: Iterable[int]) -> list[Product]:
        """Products for `ids`, in the same order; an unknown id is a KeyError."""
        ids = [int(i) for i in ids]
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        with self._lock:
            rows = self._db.execute(f"SELECT * FROM products WHERE id IN ({marks})", ids)
            by_id = {row[0]: self._product(row) for row in rows}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise KeyError(f"Product ids not in the catalog: {missing[:10]}")
        return [by_id[i] for i in ids]

    def remove(self, ids: Iterable[int]) -> None:
        """Delete products by id (unknown ids are ignored)."""
        with self._lock, self._db:
            self._db.executemany("DELETE FROM products WHERE id = ?", [(int(i),) for i in ids])

    def ids(self) -> list[int]:
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT id FROM products ORDER BY id")]

    def __iter__(self) -> Iterator[Product]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM products ORDER BY id").fetchall()
        return (self._product(row) for row in rows)

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM products").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def _relative(self, image: str | Path) -> str:
        path = Path(image).absolute()
        try:
            return path.relative_to(self.root.absolute()).as_posix()
        except ValueError:
            return str(path)

    def _product(self, row: tuple) -> Product:
        row_id, image, title, category, attributes, metadata = row
        return Product(
            row_id,
            str(self.root.absolute() / image),
            title,
            category,
            json.loads(attributes),
            json.loads(metadata),
        )


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def _folder_rows(root: Path) -> Iterator[tuple]:
    """Rows for `root/<category>/<product>/*.jpg` (one product per file) or `root/<category>/*.jpg`."""
    for category_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        category = category_dir.name
        for path in sorted(category_dir.rglob("*")):
            if not _is_image(path):
                continue
            product = path.parent.name if path.parent != category_dir else path.stem
            title = product.replace("_", " ").replace("-", " ")
            yield path, title, category, {}, {"product": product}


def folder_rows(root: str | Path) -> list[tuple]:
    """Catalog rows for every image under `root` (sub-folders name categories)."""
    root = Path(root)
    if not root.is_dir():
        raise CatalogError(f"{root} is not a folder of images.")
    rows = list(_folder_rows(root))
    if not rows:  # a flat folder of images: no categories
        rows = [
            (p, p.stem.replace("_", " "), "", {}, {}) for p in sorted(root.iterdir()) if _is_image(p)
        ]
    if not rows:
        raise CatalogError(f"No images ({', '.join(IMAGE_SUFFIXES)}) found under {root}.")
    return rows


def import_folder(catalog: Catalog, root: str | Path) -> list[int]:
    """Add every image under `root` (folders name categories) and return their ids."""
    return catalog.add_many(folder_rows(root))


def import_csv(catalog: Catalog, csv_path: str | Path, image_column: str = "image") -> list[int]:
    """Add one product per CSV row (see `csv_rows`) and return their ids."""
    return catalog.add_many(csv_rows(csv_path, image_column))


def csv_rows(csv_path: str | Path, image_column: str = "image") -> list[tuple]:
    """Catalog rows, one per CSV row; `title`, `category` and `attributes` (JSON) are optional.

    Relative image paths are relative to the CSV file; other columns become metadata.
    """
    csv_path = Path(csv_path)
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if image_column not in (reader.fieldnames or []):
            raise CatalogError(
                f"{csv_path} has no {image_column!r} column; columns are: {reader.fieldnames}."
            )
        rows = []
        for record in reader:
            image = csv_path.parent / record.pop(image_column)
            title = record.pop("title", "") or image.stem
            category = record.pop("category", "") or ""
            try:
                attributes = json.loads(record.pop("attributes", "") or "{}")
            except json.JSONDecodeError:
                raise CatalogError(f"{csv_path}: bad JSON in the attributes column.") from None
            rows.append((image, title, category, attributes, record))
    return rows
