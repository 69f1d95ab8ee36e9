"""`python -m numbpie` end to end on a generated folder, with the random-weights embedder."""

import json

import pytest

from numbpie.cli import main


@pytest.fixture
def built(tmp_path, image_tree):
    folder = tmp_path / "catalog"
    assert main(["index", str(image_tree), "--catalog", str(folder), "--embedder", "random"]) == 0
    return folder, image_tree


def test_index_then_search_finds_the_exact_image_first(built, capsys):
    folder, tree = built
    capsys.readouterr()
    query = tree / "top" / "item_05.jpg"
    assert main(["search", str(query), "--catalog", str(folder), "-k", "3", "--no-detect", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3 and set(rows[0]) >= {"id", "title", "score", "image"}
    assert rows[0]["image"] == str(query.absolute())
    assert rows[0]["score"] == pytest.approx(1.0, abs=1e-3)
    assert rows[0]["score"] >= rows[1]["score"] >= rows[2]["score"]


def test_search_text_output_and_category_filter(built, capsys):
    folder, tree = built
    capsys.readouterr()
    assert main(["search", str(tree / "top" / "item_01.jpg"), "--catalog", str(folder),
                 "--category", "dress", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 5 and all(r["category"] == "dress" for r in rows)
    assert main(["search", str(tree / "top" / "item_01.jpg"), "--catalog", str(folder), "--no-detect"]) == 0
    out = capsys.readouterr()
    assert out.out.splitlines()[0].startswith(" 1. 1.000") and "embed" in out.err


def test_reindexing_is_resumable_and_adds_only_new_images(built, capsys):
    from tests.conftest import make_image

    folder, tree = built
    make_image(99).save(tree / "top" / "new_one.jpg")
    assert main(["index", str(tree), "--catalog", str(folder)]) == 0
    assert "13 vectors" in capsys.readouterr().out
    assert main(["info", "--catalog", str(folder)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["products"] == 13 and info["index"]["count"] == 13
    assert info["categories"] == {"dress": 6, "top": 7}


def test_unreadable_catalog_images_are_skipped_not_fatal(tmp_path, image_tree, capsys):
    (image_tree / "top" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    folder = tmp_path / "c"
    assert main(["index", str(image_tree), "--catalog", str(folder), "--embedder", "random"]) == 0
    out = capsys.readouterr()
    assert "12 vectors" in out.out and "skipped" in out.err and "broken.jpg" in out.err


@pytest.mark.parametrize("args, message", [
    (["search", "{tree}/top/item_01.jpg", "--catalog", "{tmp}/none"], "No catalog"),
    (["search", "{tmp}/missing.jpg", "--catalog", "{folder}"], "missing.jpg"),
    (["search", "{tmp}/bad.png", "--catalog", "{folder}"], "bad.png"),
    (["index", "{tree}", "--catalog", "{folder}", "--embedder", "nope"], "valid names are"),
    (["index", "{tmp}/nothing", "--catalog", "{tmp}/x"], "not a folder"),
    (["search", "{tree}/top/item_01.jpg", "--catalog", "{folder}", "--tags", "{{long"], "--tags is not JSON"),
    (["search", "{tree}/top/item_01.jpg", "--catalog", "{folder}", "--tags", '["long"]'], "JSON object"),
    (["search", "{tree}/top/item_01.jpg", "--catalog", "{folder}", "--tags", '{{"sleeves": "long"}}'],
     "valid attributes are"),
    (["info", "--catalog", "{tmp}/none"], "No catalog"),
])
def test_bad_input_is_one_clear_line_and_nonzero_exit(built, tmp_path, capsys, args, message):
    folder, tree = built
    (tmp_path / "bad.png").write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    capsys.readouterr()
    args = [a.format(tree=tree, tmp=tmp_path, folder=folder) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("numbpie: error:") and message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_search_refuses_an_index_of_another_embedder(built, tmp_path, capsys):
    import torch

    from numbpie import embedder

    folder, tree = built

    torch.save(embedder.build_inception().state_dict(), tmp_path / "other.pth")
    assert main(["search", str(tree / "top" / "item_01.jpg"), "--catalog", str(folder),
                 "--embedder", str(tmp_path / "other.pth")]) == 2
    assert "Rebuild it with" in capsys.readouterr().err


@pytest.fixture
def stand_in_models(monkeypatch):
    """The default models with the stand-in detector, editor and tagger (tests/stand_ins.py)."""
    from numbpie import embedder as embedders
    from numbpie.app import assemble
    from tests import stand_ins

    editor = stand_ins.FakeEditor()
    monkeypatch.setattr(assemble, "default_models", lambda embedder=None: stand_ins.with_stand_ins(
        assemble.Models(embedders.load(embedder)), editor))
    return editor


def test_search_detects_the_garment_and_edits_it_like_the_page(built, capsys, stand_in_models):
    folder, tree = built
    query = str(tree / "dress" / "item_04.jpg")
    capsys.readouterr()
    assert main(["search", query, "--catalog", str(folder), "--json"]) == 0
    detected = json.loads(capsys.readouterr().out)
    assert detected[0]["score"] < 0.9999  # the left-half garment, not the whole catalog image
    assert main(["search", query, "--catalog", str(folder), "--tags", '{"pattern": "floral"}']) == 0
    out = capsys.readouterr()
    assert stand_in_models.calls == [({"pattern": "floral"}, False)]
    assert "box (0, 0, 53, 128)" in out.err and "edited: crop → shape → pattern" in out.err
    assert "products with pattern solid (as read on the edit) first" in out.err  # the stand-in tagger reads solid
    assert "tag " in out.err.split("time:")[1]  # the tagger read the garment's present tags for the editor
    assert main(["search", query, "--catalog", str(folder), "--no-detect", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["score"] == pytest.approx(1.0, abs=1e-3)


def test_a_bug_is_not_dressed_up_as_a_user_error(built, monkeypatch):
    from numbpie.app import assemble

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(assemble, "open_pipeline", broken)
    folder, tree = built
    with pytest.raises(RuntimeError, match="a bug"):
        main(["search", str(tree / "top" / "item_01.jpg"), "--catalog", str(folder)])


def test_precision_is_the_cpus_by_default_recorded_and_fp32_forces_it(built, capsys):
    from numbpie.embedder import resolve_precision

    folder, tree = built
    assert json.loads((folder / "index.json").read_text())["precision"] == resolve_precision("auto")
    assert main(["index", "--catalog", str(folder), "--rebuild", "--precision", "fp32"]) == 0
    assert json.loads((folder / "index.json").read_text())["precision"] == "fp32"
    capsys.readouterr()
    query = tree / "dress" / "item_04.jpg"
    assert main(["search", str(query), "--catalog", str(folder), "-k", "1", "--no-detect", "--json",
                 "--precision", "fp32"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["image"] == str(query.absolute())
