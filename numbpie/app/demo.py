"""The bundled demo catalog: rendered from the synthetic world on first use, then cached on disk."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from numbpie.app.indexer import index_catalog
from numbpie.index import Index
from numbpie.synth import write_dataset

__all__ = ["default_folder", "default_products", "ensure_demo", "examples"]

DEMO_SEED = 2026  # seeds of the demo world; training sets use other seeds
_DONE = "demo.json"


def default_folder() -> Path:
    """Where the demo catalog lives: $NUMBPIE_DATA/demo, by default numbpie/demo in the user's cache folder.

    Never inside the checkout: Streamlit watches the app's folder recursively, and each of the
    demo's ~1,200 rendered files would wake its file watcher (an inotify storm on first start).
    """
    if "NUMBPIE_DATA" in os.environ:
        return Path(os.environ["NUMBPIE_DATA"]) / "demo"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "numbpie" / "demo"


def default_products() -> int:
    """Demo catalog size: $NUMBPIE_DEMO_PRODUCTS, by default 400."""
    return int(os.environ.get("NUMBPIE_DEMO_PRODUCTS", 400))


def _is_ready(folder: Path, embedder, recipe: dict) -> bool:
    """A finished demo of this recipe, indexed by this embedder."""
    try:
        done = json.loads((folder / _DONE).read_text())
        manifest = Index.read_manifest(folder)
    except (FileNotFoundError, ValueError):
        return False
    return bool(done.get("complete")) and done.get("recipe") == recipe and manifest["embedder"] == embedder.identity


def ensure_demo(
    embedder,
    folder: str | Path | None = None,
    products: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Path:
    """Render and index the demo catalog unless a finished one of this size, for `embedder`, is already there.

    `progress(stage, done, total)` reports rendering then embedding.
    """
    folder = Path(folder or default_folder())
    products = products or default_products()
    recipe = {"products": products, "street_per_product": 1, "seed": DEMO_SEED}
    if _is_ready(folder, embedder, recipe):
        return folder
    previous = folder / _DONE
    if not previous.exists() or json.loads(previous.read_text()).get("recipe") != recipe:
        shutil.rmtree(folder, ignore_errors=True)  # a demo of another recipe: start clean
        # One process: the app's own module must not be re-run by spawned workers (~0.1 s a product).
        rendered = (lambda done, total: progress("render", done, total)) if progress else False
        write_dataset(folder, products=products, street_per_product=1, seed=DEMO_SEED,
                      progress=rendered, workers=1)
        previous.write_text(json.dumps({"recipe": recipe, "complete": False}))
    stage = (lambda done, total: progress("embed", done, total)) if progress else None
    rebuild = (folder / "index.json").exists() and \
        Index.read_manifest(folder)["embedder"] != embedder.identity
    index_catalog(folder, embedder, rebuild=rebuild, checkpoint_every=64, progress=stage)
    previous.write_text(json.dumps({"recipe": recipe, "complete": True}))
    return folder


def examples(folder: str | Path | None = None, count: int = 8) -> list[Path]:
    """Example queries: street photos (half), then model shots and product shots, evenly spread."""
    folder = Path(folder or default_folder())
    shares = {"street": count - 2 * (count // 4), "models": count // 4, "products": count // 4}
    picked = []
    for kind, share in shares.items():
        found = sorted((folder / kind).glob("*.*"), key=lambda p: (len(p.stem), p.stem))
        picked += found[:: max(1, len(found) // max(share, 1))][:share]
    return picked
