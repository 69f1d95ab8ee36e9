"""bf16 by default where the CPU has it; an index records its precision and queries of the other one are checked."""

import numpy as np
import pytest

from numbpie import embedder as embedders
from numbpie.app.indexer import index_catalog
from numbpie.app.pipeline import Pipeline
from numbpie.errors import OptionError
from numbpie.index import Index


@pytest.mark.parametrize(("has_bf16", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_is_bf16_only_on_cpus_that_compute_it(monkeypatch, has_bf16, expected):
    monkeypatch.setattr(embedders, "cpu_has_bf16", lambda: has_bf16)
    assert embedders.resolve_precision("auto") == expected
    assert embedders.resolve_precision("fp32") == "fp32"  # forcing wins on every CPU
    with pytest.raises(OptionError, match="fp32, bf16"):
        embedders.resolve_precision("fp16")


@pytest.fixture(scope="module")
def fp32():
    return embedders.load("random", batch_size=8, precision="fp32")


@pytest.fixture
def folder(indexed_folder, fp32):
    return indexed_folder(fp32)


def test_the_index_records_the_precision_it_was_embedded_in(folder, fp32):
    assert Index.read_manifest(folder)["precision"] == "fp32"
    bf16 = fp32.with_precision("bf16")
    assert bf16.model is fp32.model and bf16.precision == "bf16" and fp32.with_precision("fp32") is fp32


def test_queries_of_another_precision_are_used_only_when_they_agree(folder, fp32, monkeypatch):
    bf16 = fp32.with_precision("bf16")
    monkeypatch.setattr(embedders, "AGREEMENT", -1.0)  # any agreement passes: bf16 queries stay
    assert Pipeline.open(folder, embedder=bf16).embedder is bf16
    monkeypatch.setattr(embedders, "AGREEMENT", 1.5)  # none does: queries run in the index's fp32
    pipeline = Pipeline.open(folder, embedder=bf16)
    assert pipeline.embedder.precision == "fp32" and pipeline.embedder.model is fp32.model
    product = next(iter(pipeline.catalog))
    top = pipeline.search(product.image, k=1, detect=False).matches[0]
    assert top.product.id == product.id and top.score == pytest.approx(1.0, abs=1e-5)


def test_the_real_check_compares_a_sample_of_the_catalog(folder, fp32):
    bf16 = fp32.with_precision("bf16")
    pipeline = Pipeline.open(folder, embedder=bf16)
    index, catalog = pipeline.index, pipeline.catalog
    products = catalog.get(index.ids())
    from numbpie import images

    cosines = np.sum(bf16.embed([images.load(p.image) for p in products]) * index.vectors(index.ids()), axis=1)
    expected = "bf16" if cosines.min() >= embedders.AGREEMENT else "fp32"
    assert pipeline.embedder.precision == expected


def test_extending_an_index_embeds_in_its_precision_when_the_new_one_disagrees(folder, fp32, monkeypatch,
                                                                                 image_tree):
    monkeypatch.setattr(embedders, "AGREEMENT", 1.5)
    extra = image_tree / "top" / "late.jpg"
    (image_tree / "top" / "item_01.jpg").rename(extra)
    index, _ = index_catalog(folder, fp32.with_precision("bf16"), rows=[(extra, "late", "top", {}, {})])
    assert index.precision == "fp32" and Index.read_manifest(folder)["precision"] == "fp32"
    new_id = max(index.ids())
    np.testing.assert_allclose(index.vectors([new_id]), fp32.embed([embedders.pictures.load(extra)]), atol=1e-5)
