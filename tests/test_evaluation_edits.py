"""`numbpie eval edits`: the cases, the judging, the summary and the command line."""

from __future__ import annotations

import dataclasses
import json

import pytest
from safetensors.torch import save_file

from numbpie.attributes import ATTRIBUTES, applies_to
from numbpie.cli import main
from numbpie.evaluation import edits
from numbpie.synth import render_product, write_dataset
from numbpie.tagger import TaggerNet


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    write_dataset(out, products=30, street_per_product=0, seed=9, progress=False)
    return out


class SpecTagger:
    """Reads the true tags of any image it has seen rendered: a perfect judge for the evaluator."""

    def __init__(self):
        self.seen = {}

    def remember(self, spec, image=None):
        image = image or render_product(spec)
        self.seen[image.tobytes()] = {"category": spec.category, **spec.attributes}
        return image

    def tag(self, image):
        return self.seen[image.tobytes()]


class Oracle:
    """Edits by rendering the true edited garment (a pattern edit shows the house print)."""

    def __init__(self, tagger: SpecTagger, spec_of):
        self.tagger, self.spec_of = tagger, spec_of

    def can_edit(self, tags, current):
        return True

    def edit(self, image, tags, model_view=False, current=None):
        from gan import Edit
        from gan.prints import true_edit

        spec = self.spec_of(image)
        edited = self.tagger.remember(dataclasses.replace(spec, **tags), true_edit(spec, dict(tags), source=image))
        return Edit(edited, [("crop", image), ("shape", edited)])


def test_cases_only_ask_for_a_value_the_product_lacks(world):
    cases = edits.edit_cases(world, "test", per_value=2)
    assert cases
    for case in cases:
        assert getattr(case.spec, case.attribute) != case.value
        assert applies_to(case.attribute, case.spec.category)
    keys = [c.key for c in cases]
    assert max(keys.count(k) for k in keys) <= 2
    assert {c.attribute for c in cases} <= set(edits.EDITABLE)


def test_a_perfect_editor_and_the_do_nothing_baseline(world):
    tagger = SpecTagger()
    cases = edits.edit_cases(world, "test", per_value=1)
    sources = {}
    for case in cases:
        sources[tagger.remember(case.spec).tobytes()] = case.spec
    oracle = Oracle(tagger, lambda image: sources[image.tobytes()])

    perfect = edits.evaluate_edits(world, oracle, tagger, "test", per_value=1,
                                       search=lambda image, tags: [tagger.tag(image)] * 5)
    assert perfect["success"] == perfect["preservation"] == perfect["search_top5_match"] == 1.0
    assert perfect["l1_ratio"] == 0.0
    assert sum(row["cases"] for row in perfect["per_value"].values()) == len(cases)

    baseline = edits.evaluate_edits(world, edits.Unchanged(), tagger, "test", per_value=1)
    assert baseline["success"] == 0.0 and baseline["preservation"] == 1.0
    assert baseline["l1_ratio"] == pytest.approx(1.0)
    assert "search_top5_match" not in baseline


def test_summary_by_hand():
    rows = [
        {"success": 1.0, "preservation": 1.0, "l1_edit": 0.1, "l1_input": 0.4},
        {"success": 0.0, "preservation": 1.0, "l1_edit": 0.3, "l1_input": 0.4},
        {"success": 1.0, "preservation": 0.0, "l1_edit": 0.2, "l1_input": 0.2},
    ]
    summary = edits.summarise(rows, ["fit=loose", "fit=loose", "pattern=floral"])
    assert summary["success"] == pytest.approx(2 / 3)
    assert summary["l1_ratio"] == pytest.approx(0.6 / 1.0)
    assert summary["per_value"]["fit=loose"] == {"success": 0.5, "preservation": 1.0,
                                                 "l1_ratio": pytest.approx(0.5), "cases": 2}


def test_cli_eval_edits_json(world, tmp_path, capsys):
    save_file(TaggerNet().state_dict(), tmp_path / "tagger.safetensors")
    code = main(["eval", "edits", "--data", str(world), "--editor", "identity", "--tagger",
                 str(tmp_path / "tagger.safetensors"), "--per-value", "1", "--json", "--embedder", "random"])
    assert code == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"success", "preservation", "l1_ratio", "search_top5_match", "per_value"} <= set(metrics)
    assert metrics["l1_ratio"] == pytest.approx(1.0)
    assert set(metrics["per_value"]) <= {f"{a}={v}" for a in edits.EDITABLE for v in ATTRIBUTES[a]}


def test_cli_eval_edits_without_bundled_editors_says_what_to_do(world, capsys, monkeypatch):
    from numbpie.app import assemble

    monkeypatch.setattr(assemble, "bundled_editor", lambda tagger=None: None)
    assert main(["eval", "edits", "--data", str(world), "--no-search"]) == 2
    assert "--editor identity" in capsys.readouterr().err


def test_cli_eval_edits_of_a_training_folder_skips_what_it_cannot_edit_and_writes_a_sheet(world, tmp_path, capsys):
    import gan
    from gan.editor import SHAPE_LAYOUT, Editor
    from gan.models import Generator, ResnetGenerator

    folder = tmp_path / "run"  # what python -m gan.train exports: a StarGAN and one CycleGAN pair
    gan.save(Editor("stargan", Generator(4, 13, 1, residual=True), 16, SHAPE_LAYOUT, "shape"),
             folder / "stargan" / "shape.safetensors")
    for direction in ("floral_add", "floral_remove"):
        gan.save(Editor("cyclegan", ResnetGenerator(ngf=4, n_blocks=1, residual=True), 16, name=direction),
                 folder / "cyclegan" / "floral" / f"{direction}.safetensors")
    save_file(TaggerNet().state_dict(), tmp_path / "tagger.safetensors")
    sheet = tmp_path / "sheet.png"
    code = main(["eval", "edits", "--data", str(world), "--editor", str(folder), "--tagger",
                 str(tmp_path / "tagger.safetensors"), "--per-value", "1", "--json", "--no-search",
                 "--sheet", str(sheet)])
    assert code == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["skipped"] > 0  # stripes edits: no stripes CycleGAN in the folder
    assert not any(k.startswith("pattern=stripes") for k in metrics["per_value"])
    assert metrics["l1_ratio"] == pytest.approx(1.0, abs=0.02)  # untrained residual editors change nothing
    from PIL import Image

    with Image.open(sheet) as image:  # 8 rows (or fewer products), a column per tag value plus the product
        columns = 1 + sum(len(ATTRIBUTES[a]) for a in edits.EDITABLE)
        assert image.width == columns * 128


class ReadsAs:
    """A tagger that reads the same `tags` on every garment."""

    def __init__(self, tags):
        self.tags = tags

    def tag(self, image):
        return dict(self.tags)


def test_gallery_search_ranks_as_the_page_does_after_an_edit(world, random_embedder):
    from numbpie.synth.splits import split_products

    products = split_products(world, "test")
    name, value = next((n, p.attributes[n]) for n in ("pattern", "sleeve_length", "fit") for p in products
                       if 0 < sum(q.attributes[n] == p.attributes[n] for q in products) < len(products))
    other = next(v for v in ATTRIBUTES[name] if v != value)
    carrying = sum(p.attributes[name] == value for p in products)
    query = render_product(edits.split_specs(world, "test")[products[0].id])
    by_similarity = edits.gallery_search(world, random_embedder, "test", k=len(products))(query)
    search = edits.gallery_search(world, random_embedder, "test", k=len(products), tagger=ReadsAs({name: value}))
    assert search(query) == by_similarity
    ranked = search(query, {name: other})  # the request was `other`; the tagger reads `value` on the edit
    assert [t[name] == value for t in ranked] == [True] * carrying + [False] * (len(products) - carrying)
    assert [t for t in ranked if t[name] != value] == [t for t in by_similarity if t[name] != value]
