"""numbpie.app.indexer and numbpie.app.demo with a cheap stand-in embedder: progress, --rebuild, --factory, the demo."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest

from numbpie.app import demo
from numbpie.app.indexer import index_catalog, open_catalog
from numbpie.catalog import folder_rows
from numbpie.cli import main
from numbpie.errors import IndexMismatchError
from numbpie.index import Index, normalize


class ColourEmbedder:
    """A stand-in embedder: an image's mean colour and spread as a unit vector; counts what it embeds."""

    dim, precision = 8, "fp32"

    def __init__(self, name: str = "colour"):
        self.name = name
        self.identity = {"name": name, "sha256": f"{name}-sha", "input_size": 0}
        self.embedded = 0

    def embed(self, images):
        self.embedded += len(images)
        arrays = [np.asarray(image, np.float32) for image in images]
        return normalize(np.array([np.r_[a.mean((0, 1)), a.std((0, 1)), 1.0, 1.0] for a in arrays], np.float32))

    def with_precision(self, precision):
        return self


def test_progress_is_reported_after_every_checkpoint(tmp_path, image_tree):
    seen = []
    index, skipped = index_catalog(tmp_path / "c", ColourEmbedder(), folder_rows(image_tree), checkpoint_every=5,
                                   progress=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 12), (5, 12), (10, 12), (12, 12)] and len(index) == 12 and skipped == []
    seen.clear()
    index_catalog(tmp_path / "c", ColourEmbedder(), folder_rows(image_tree), progress=lambda *a: seen.append(a))
    assert seen == [(0, 0)]  # nothing left to do, and the caller still hears so


def test_rebuild_embeds_everything_again_and_may_change_the_embedder(tmp_path, image_tree):
    folder, first = tmp_path / "c", ColourEmbedder()
    index_catalog(folder, first, folder_rows(image_tree))
    ids = sorted(open_catalog(folder).ids())
    again = ColourEmbedder()
    index_catalog(folder, again, folder_rows(image_tree))
    assert again.embedded == 0  # an up-to-date index is left alone
    index, _ = index_catalog(folder, again, rebuild=True)
    assert again.embedded == 12 and sorted(index.ids().tolist()) == ids
    other = ColourEmbedder("other")
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        index_catalog(folder, other)
    assert other.embedded == 0
    index, _ = index_catalog(folder, other, rebuild=True)
    assert other.embedded == 12 and sorted(index.ids().tolist()) == ids
    assert Index.read_manifest(folder)["embedder"] == other.identity
    assert sorted(open_catalog(folder).ids()) == ids  # the catalog itself is kept


@pytest.fixture
def colour_cli(monkeypatch):
    """`python -m numbpie` with every embedder name loading a ColourEmbedder of that name."""
    from numbpie import cli

    loaded = []

    def load(name=None, precision="auto", **_):
        loaded.append(ColourEmbedder(name or "colour"))
        return loaded[-1]

    monkeypatch.setattr(cli.embedders, "load", load)
    return loaded


def test_the_cli_passes_factory_and_rebuild_to_the_indexer(tmp_path, image_tree, colour_cli, capsys):
    folder = tmp_path / "c"
    assert main(["index", str(image_tree), "--catalog", str(folder), "--embedder", "colour",
                 "--factory", "HNSW8,Flat"]) == 0
    manifest = json.loads((folder / "index.json").read_text())
    assert manifest["factory"] == "HNSW8,Flat" and manifest["count"] == 12
    loaded = Index.load(folder, embedder=colour_cli[-1].identity)  # held: FAISS frees the inner index with it
    assert isinstance(faiss.downcast_index(loaded._index.index), faiss.IndexHNSWFlat)  # really the HNSW asked for
    assert main(["index", "--catalog", str(folder)]) == 0  # extends with the embedder that built it
    assert colour_cli[-1].name == "colour" and colour_cli[-1].embedded == 0
    assert main(["index", "--catalog", str(folder), "--embedder", "other"]) == 2
    assert "--rebuild" in capsys.readouterr().err
    assert main(["index", "--catalog", str(folder), "--embedder", "other", "--rebuild", "--factory", "Flat"]) == 0
    manifest = json.loads((folder / "index.json").read_text())
    assert manifest["embedder"]["name"] == "other" and manifest["factory"] == "Flat" and manifest["count"] == 12
    assert colour_cli[-1].embedded == 12


def test_the_demo_is_built_once_and_again_only_for_another_embedder_or_recipe(tmp_path):
    folder, colour = tmp_path / "demo", ColourEmbedder()
    stages = []
    assert demo.ensure_demo(colour, folder, products=4, progress=lambda *a: stages.append(a)) == folder
    assert stages[0][0] == "render" and stages[-1] == ("embed", 4, 4)
    assert len(open_catalog(folder)) == 4 and Index.read_manifest(folder)["count"] == 4 and colour.embedded == 4
    product = sorted((folder / "products").iterdir())[0]
    rendered_at = product.stat().st_mtime_ns

    demo.ensure_demo(colour, folder, products=4)
    assert colour.embedded == 4  # ready: nothing is rendered or embedded again

    other = ColourEmbedder("other")
    demo.ensure_demo(other, folder, products=4)
    assert other.embedded == 4 and Index.read_manifest(folder)["embedder"] == other.identity
    assert product.stat().st_mtime_ns == rendered_at  # the same pictures, embedded again

    demo.ensure_demo(other, folder, products=5)  # another recipe: a new world
    assert len(open_catalog(folder)) == 5 and Index.read_manifest(folder)["count"] == 5
    assert json.loads((folder / "demo.json").read_text()) == {
        "recipe": {"products": 5, "street_per_product": 1, "seed": demo.DEMO_SEED}, "complete": True}


def test_examples_take_half_street_photos_then_spread_model_and_product_shots(tmp_path):
    for kind in ("street", "models", "products"):
        (tmp_path / kind).mkdir()
        for n in range(1, 13):
            (tmp_path / kind / f"{n}.png").write_bytes(b"")
    picked = demo.examples(tmp_path, count=8)
    assert [(p.parent.name, p.stem) for p in picked] == [
        ("street", "1"), ("street", "4"), ("street", "7"), ("street", "10"),
        ("models", "1"), ("models", "7"), ("products", "1"), ("products", "7")]
    assert len(demo.examples(tmp_path, count=4)) == 4 and demo.examples(tmp_path / "none") == []
