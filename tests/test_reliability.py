"""Crash safety of `numbpie index` and concurrent use of one shared Pipeline."""

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from numbpie.app.indexer import index_catalog, open_catalog
from numbpie.app.pipeline import Pipeline
from numbpie.catalog import import_folder
from numbpie.index import Index
from tests.conftest import make_image

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "crash_index.py"


def load_crash_script():
    spec = importlib.util.spec_from_file_location("crash_index", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sigkill_during_indexing_never_breaks_the_catalog(tmp_path):
    result = load_crash_script().run(kills=3, count=60, seed=1, workdir=tmp_path, log=lambda *_: None)
    assert result["problems"] == []
    assert result["final"] == 60


def test_vectors_whose_rows_never_committed_are_dropped_on_load(tmp_path, image_tree, random_embedder):
    folder = tmp_path / "c"
    index_catalog(folder, random_embedder, rows=[(p, p.stem, "", {}, {}) for p in sorted(image_tree.rglob("*.jpg"))])
    catalog = open_catalog(folder)
    # Simulate a kill between "save vectors" and "commit rows": vectors for ids with no row.
    index = Index.load(folder)
    index.add(random_embedder.embed([make_image(50), make_image(51)]), [1000, 1001])
    index.save(folder)
    reloaded = Index.load(folder, count=len(catalog), keep_ids=catalog.ids())
    assert len(reloaded) == len(catalog) == 12
    # A rerun drops the stale vectors before adding, so the new product finds itself.
    make_image(52).save(image_tree / "top" / "late.jpg")
    index_catalog(folder, random_embedder, rows=[(image_tree / "top" / "late.jpg", "late", "top", {}, {})])
    pipeline = Pipeline.open(folder, embedder=random_embedder)
    assert len(pipeline.index) == 13 and 1000 not in pipeline.index.ids()
    best = pipeline.search(image_tree / "top" / "late.jpg").matches[0]
    assert best.product.title == "late" and best.score > 0.999


def test_a_kill_between_the_vectors_and_the_manifest_write_is_recovered(tmp_path, image_tree, random_embedder):
    folder = tmp_path / "c"
    rows = [(p, p.stem, "", {}, {}) for p in sorted(image_tree.rglob("*.jpg"))]
    index_catalog(folder, random_embedder, rows=rows[:6])
    behind = (folder / "index.json").read_bytes()  # the manifest of the 6-vector save
    index_catalog(folder, random_embedder, rows=rows[6:])
    (folder / "index.json").write_bytes(behind)  # as if killed after index.faiss, before index.json
    catalog = open_catalog(folder)
    assert len(Index.load(folder, count=len(catalog), keep_ids=catalog.ids())) == 12
    index_catalog(folder, random_embedder)  # a rerun finishes cleanly and rewrites the manifest
    assert Index.read_manifest(folder)["count"] == 12


def test_eight_threads_searching_at_once_match_serial_results(tmp_path, image_tree, random_embedder):
    folder = tmp_path / "c"
    import_folder(open_catalog(folder), image_tree)
    index_catalog(folder, random_embedder)
    pipeline = Pipeline.open(folder, embedder=random_embedder)
    queries = sorted(image_tree.rglob("*.jpg")) * 2

    def run(path):
        result = pipeline.search(path, k=4, category="top" if "top" in path.parts else None)
        return [(m.product.id, round(m.score, 5)) for m in result.matches]

    serial = [run(q) for q in queries]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(run, queries))
    assert parallel == serial


@pytest.mark.parametrize("size", [(1, 1), (3, 900), (5000, 40)])
def test_extreme_image_shapes_search_without_crashing(tmp_path, image_tree, random_embedder, size):
    folder = tmp_path / "c"
    import_folder(open_catalog(folder), image_tree)
    index_catalog(folder, random_embedder)
    from PIL import Image

    result = Pipeline.open(folder, embedder=random_embedder).search(Image.new("L", size, 128))
    assert len(result.matches) == 5


def test_eight_threads_editing_and_searching_match_serial_results(tmp_path, image_tree, random_embedder):
    from tests.test_gan_editor import tiny_editor

    folder = tmp_path / "c"
    import_folder(open_catalog(folder), image_tree)
    index_catalog(folder, random_embedder)
    pipeline = Pipeline.open(folder, embedder=random_embedder, editor=tiny_editor())
    current = {"category": "top", "sleeve_length": "short", "fit": "normal", "neckline": "round",
               "pattern": "solid"}
    jobs = [(path, tags) for path in sorted(image_tree.rglob("*.jpg"))[:6]
            for tags in ({"sleeve_length": "long"}, {"pattern": "floral"}, {})]

    def run(job):
        path, tags = job
        result = pipeline.search(path, k=3, tags=tags, current=current)
        return [(m.product.id, round(m.score, 5)) for m in result.matches]

    serial = [run(job) for job in jobs]
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(run, jobs)) == serial
