"""The weights manifest: resolve a model name or path to a checked file and its settings."""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

from numbpie.errors import WeightsError

__all__ = ["WEIGHTS_DIR", "WeightsError", "entry", "manifest", "names", "resolve", "sha256"]

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
MANIFEST_PATH = WEIGHTS_DIR / "manifest.json"
# Where scripts/download_data.sh puts real assets (git-ignored); NUMBPIE_DOWNLOADS overrides it.
DOWNLOADS_DIR = Path(os.environ.get("NUMBPIE_DOWNLOADS", WEIGHTS_DIR / "downloads"))


@lru_cache(maxsize=1)
def manifest() -> dict:
    """The parsed `weights/manifest.json`."""
    return json.loads(MANIFEST_PATH.read_text())


def names(kind: str) -> list[str]:
    """Registered model names of one kind (embedder, detector, gan, tagger, data)."""
    return sorted(
        key.split("/", 1)[1] for key, value in manifest()["assets"].items() if value["kind"] == kind
    )


def entry(kind: str, name: str) -> dict:
    """The manifest entry for `kind/name`."""
    try:
        return manifest()["assets"][f"{kind}/{name}"]
    except KeyError:
        raise WeightsError(
            f"No {kind} called {name!r}; valid names are: {', '.join(names(kind))}, "
            "or a path to a weights file."
        ) from None


@lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256(path: str | Path) -> str:
    """Hex sha256 of a file (cached per path, size and mtime)."""
    stat = Path(path).stat()
    return _sha256_cached(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def _candidates(item: dict) -> list[Path]:
    name = item["file"]
    places = [WEIGHTS_DIR / name, DOWNLOADS_DIR / name]
    for extra in item.get("also_found_in", []):
        places.append(Path(os.path.expandvars(os.path.expanduser(extra))) / Path(name).name)
    return places


def resolve(kind: str, name_or_path: str | Path) -> tuple[Path, dict]:
    """Return `(path, manifest entry)` for a registered name, or `(path, {})` for a file path.

    A registered file must exist and match its pinned sha256; otherwise a WeightsError says
    how to get it.
    """
    key = f"{kind}/{name_or_path}"
    if key not in manifest()["assets"]:
        path = Path(name_or_path)
        if path.is_file():
            return path, {}
        entry(kind, str(name_or_path))  # raises, listing valid names
    item = manifest()["assets"][key]
    if "file" not in item:  # a model built in code (e.g. random weights), no file needed
        return Path(), item
    found = next((p for p in _candidates(item) if p.is_file()), None)
    if found is None:
        raise WeightsError(
            f"The {kind} weights {name_or_path!r} ({item['file']}) are not on this machine. "
            f"On a machine with internet access run: scripts/download_data.sh --only "
            f"{kind}/{name_or_path}"
        )
    pinned = item.get("sha256")
    if pinned and sha256(found) != pinned:
        raise WeightsError(
            f"{found} does not match its sha256 in weights/manifest.json; delete it and "
            f"download it again with scripts/download_data.sh --only {kind}/{name_or_path}"
        )
    return found, item
