"""The one assembly: `open_pipeline` puts the default models and a catalog's index together."""

import pytest

from numbpie import embedder as embedders
from numbpie.app import assemble
from numbpie.app.assemble import Models, open_pipeline
from numbpie.errors import CatalogError
from tests import stand_ins


@pytest.fixture
def folder(indexed_folder, random_embedder):
    return indexed_folder(random_embedder)


def test_the_models_go_into_the_pipeline_with_the_embedder_that_built_the_index(folder, random_embedder):
    models = stand_ins.with_stand_ins(Models(random_embedder))
    pipeline = open_pipeline(folder, models=models)
    assert pipeline.embedder is random_embedder  # the same identity: reused, not loaded again
    assert (pipeline.detector, pipeline.editor, pipeline.tagger) == (models.detector, models.editor, models.tagger)
    assert pipeline.tag(None)["category"] == "dress"  # the tagger is a part of the pipeline


class OtherEmbedder:
    identity = {"name": "other", "sha256": "0" * 64}
    name = "other"


def test_an_index_built_by_another_embedder_gets_that_embedder(folder):
    models = stand_ins.with_stand_ins(Models(OtherEmbedder()))
    pipeline = open_pipeline(folder, models=models)
    assert pipeline.embedder.name == "random" and pipeline.detector is models.detector
    assert len(pipeline.search(folder.parent / "shop" / "top" / "item_01.jpg", detect=False).matches) == 5


def test_without_models_the_defaults_load_for_the_index_embedder(folder, monkeypatch):
    asked = []

    def default_models(embedder=None):
        asked.append(embedder)
        return stand_ins.with_stand_ins(Models(embedders.load(embedder)))

    monkeypatch.setattr(assemble, "default_models", default_models)
    pipeline = open_pipeline(folder)
    assert asked == ["random"] and pipeline.embedder.name == "random" and pipeline.editor is not None


def test_a_folder_without_a_catalog_fails_before_any_model_loads(tmp_path, monkeypatch):
    def no_models(embedder=None):
        raise AssertionError("models were loaded")

    monkeypatch.setattr(assemble, "default_models", no_models)
    with pytest.raises(CatalogError, match="python -m numbpie index"):
        open_pipeline(tmp_path / "nothing")


def test_no_folder_is_the_demo_catalog_built_on_first_use(tmp_path, monkeypatch, random_embedder):
    monkeypatch.setenv("NUMBPIE_DATA", str(tmp_path))
    monkeypatch.setenv("NUMBPIE_DEMO_PRODUCTS", "4")
    stages = set()
    pipeline = open_pipeline(models=Models(random_embedder), progress=lambda stage, done, total: stages.add(stage))
    assert stages == {"render", "embed"} and len(pipeline.catalog) == 4
    assert (tmp_path / "demo" / "catalog.sqlite").exists() and pipeline.embedder is random_embedder


def test_a_bundled_pattern_tagunet_serves_all_four_pattern_directions(monkeypatch):
    import gan as gan_package
    from gan.editor import Editor
    from gan.tagunet import TagUnet

    pattern = Editor("pattern", TagUnet(c_dim=3, ngf=8, levels=2, prints=("solid", "floral", "stripes")), 32,
                     (("pattern", ("solid", "floral", "stripes")),), "pattern")
    monkeypatch.setattr(assemble.weights, "names", lambda kind: ["gan/pattern-x"])
    monkeypatch.setattr(assemble.weights, "entry", lambda kind, name: {"role": "pattern"})
    monkeypatch.setattr(gan_package, "load", lambda name: pattern)
    editor = assemble.bundled_editor()
    assert sorted(editor.cyclegan) == ["floral_add", "floral_remove", "stripes_add", "stripes_remove"]
    assert all(part.net.net is pattern.net for part in editor.cyclegan.values())  # one shared network
