"""The Streamlit page, driven headless with streamlit.testing.v1.AppTest."""

import io
import math
from pathlib import Path

import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from numbpie.app import assemble
from numbpie.app.pipeline import Pipeline
from numbpie.errors import EditError
from tests import stand_ins

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """One small demo catalog for the module; the first test's app run builds it."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def real_models():
    return assemble.default_models()


def start(data_dir, monkeypatch) -> AppTest:
    monkeypatch.setenv("NUMBPIE_DATA", str(data_dir))
    monkeypatch.setenv("NUMBPIE_DEMO_PRODUCTS", "24")
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    assert not at.exception
    return at


@pytest.fixture
def app(data_dir, monkeypatch):
    st.cache_resource.clear()
    yield start(data_dir, monkeypatch)
    st.cache_resource.clear()


@pytest.fixture
def full_app(data_dir, monkeypatch, real_models):
    """The page with a (fake) editor, tagger and detector injected through assemble.default_models."""
    editor = stand_ins.FakeEditor()
    loaded = stand_ins.with_stand_ins(real_models, editor)
    monkeypatch.setattr(assemble, "default_models", lambda embedder=None: loaded)
    st.cache_resource.clear()
    at = start(data_dir, monkeypatch)
    at.editor = editor
    yield at
    st.cache_resource.clear()


def result_keys(at, prefix="result-"):
    return [b.key for b in at.button if b.key.startswith(prefix)]


def pick_example(at, n=0):
    [b for b in at.button if b.key.startswith("example-")][n].click().run()
    assert not at.exception


def png_bytes(image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_first_run_builds_the_demo_and_asks_for_a_query(app, real_models):
    assert any("Upload a photo" in info.value for info in app.info)
    shown = [w.value for w in app.warning]
    assert all(any(note in text for text in shown) for note in real_models.notes)  # what is missing is said


def test_a_random_embedder_is_labelled_as_such(monkeypatch):
    from numbpie import embedder

    monkeypatch.setattr(embedder, "default_name", lambda: "random")
    assert any("randomly initialised" in note for note in assemble.default_models().notes)


def test_an_example_query_gives_k_results(app):
    pick_example(app)
    assert not app.error
    assert len(result_keys(app)) == 5
    scores = [float(m.value) for m in app.metric]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1.0001 for s in scores)
    assert "total" in app.sidebar.table[0].value["step"].tolist()
    assert any(b.key == "generate" for b in app.button)  # the bundled GANs turn style editing on
    assert not any("GAN editor" in info.value for info in app.info)


def test_search_with_this_makes_a_result_the_new_query(app):
    pick_example(app, 1)
    app.toggle[0].set_value(False).run()  # the whole product shot, not a detector crop of it
    first = [b for b in app.button if b.key.startswith("result-")][0]
    first.click().run()
    assert not app.exception
    assert result_keys(app)[0] == first.key  # the product finds itself first
    assert float(app.metric[0].value) == pytest.approx(1.0, abs=1e-3)


def test_k_and_category_filters(app):
    pick_example(app)
    app.sidebar.slider[1].set_value(3).run()
    app.sidebar.selectbox[0].select("top").run()
    assert not app.exception
    assert 1 <= len(result_keys(app)) <= 3


def test_minimum_score_hides_weaker_results(app):
    pick_example(app)
    scores = [float(m.value) for m in app.metric]
    floor = math.floor(scores[1] * 100) / 100  # keeps at least the best two
    app.sidebar.slider[2].set_value(floor).run()
    assert not app.exception
    kept = [float(m.value) for m in app.metric]
    assert len(kept) >= 2 and all(s >= floor - 0.0005 for s in kept)
    app.sidebar.slider[2].set_value(1.0).run()
    assert not result_keys(app) and any("No product passes" in w.value for w in app.warning)


def test_a_manual_crop_changes_what_is_searched(app):
    pick_example(app)
    before = [m.value for m in app.metric]
    app.checkbox(key="manual_crop").check().run()
    app.slider(key="crop_x").set_value((0, 20)).run()
    assert not app.exception and not app.error
    assert [m.value for m in app.metric] != before


@pytest.mark.parametrize("name, data, words", [
    ("broken.png", b"\x89PNG\r\n\x1a\n not really", "truncated or corrupt"),
    ("notes.pdf", b"%PDF-1.4\n%\xe2\xe3\n1 0 obj\n", "PDF files are not supported"),
    ("page.jpg", b"<html><body>hello</body></html>", "not supported"),
    ("empty.png", b"", "empty"),
    ("huge.png", png_bytes(Image.new("RGB", (8000, 6000), "white")), "pixel limit"),
])
def test_a_bad_upload_gives_one_error_and_the_page_keeps_working(app, name, data, words):
    app.session_state.query = (name, data)
    app.run()
    assert not app.exception
    assert len(app.error) == 1
    message = app.error[0].value
    assert name in message and words in message and message.count(". ") == 0  # one sentence
    pick_example(app)
    assert not app.error and len(result_keys(app)) == 5


def test_several_garments_offer_a_choice(full_app, monkeypatch):
    searched = []
    search = Pipeline.search

    def spy(self, source, k=5, **options):
        result = search(self, source, k, **options)
        searched.append(result.box)
        return result

    monkeypatch.setattr(Pipeline, "search", spy)
    at = full_app
    pick_example(at)
    choice = at.radio(key="garment")
    assert choice.options == ["1 dress 0.90", "2 top 0.60"]
    left = searched[-1]  # the best garment, the left half (with the crop margin)
    choice.set_value("2 top 0.60").run()
    assert not at.exception and not at.error
    right = searched[-1]  # the chosen one: exactly the right half
    assert left[0] == 0 and right[0] > 0 and right[2] > left[2] and right[0] * 2 == right[2]
    assert len(result_keys(at)) == 5


def test_a_tag_edit_gives_new_results(full_app):
    at = full_app
    pick_example(at)
    # the tagger's tags are pre-selected; length shows because the tagger says dress
    assert at.selectbox(key="tag-pattern").value == "solid"
    assert at.selectbox(key="tag-fit").value == "tight"
    assert at.selectbox(key="tag-sleeve_length").value == "keep"
    assert at.button(key="generate").disabled  # nothing changed yet
    at.selectbox(key="tag-pattern").select("floral").run()
    at.button(key="generate").click().run()
    assert not at.exception and not at.error
    assert at.editor.calls == [({"pattern": "floral"}, False)]
    before = [(b.key.split("-")[1], m.value) for b, m in
              zip([b for b in at.button if b.key.startswith("before-")], at.metric[5:10], strict=True)]
    after = [(b.key.split("-")[1], m.value) for b, m in
             zip([b for b in at.button if b.key.startswith("after-")], at.metric[10:15], strict=True)]
    assert len(before) == len(after) == 5
    assert before != after
    assert any("Time per step (edit + search)" in h.value for h in at.sidebar.subheader)


def test_an_edit_the_editor_refuses_is_one_error(full_app, monkeypatch):
    at = full_app

    def refuse(image, tags, model_view=False, current=None):
        raise EditError("The model view needs a pix2pix generator.")

    monkeypatch.setattr(at.editor, "edit", refuse)
    pick_example(at)
    at.checkbox(key="tag-model").check().run()
    at.button(key="generate").click().run()
    assert not at.exception
    assert len(at.error) == 1 and "pix2pix" in at.error[0].value
    assert len(result_keys(at)) == 5  # the original results stay


def test_a_bug_shows_as_a_bug_not_as_a_user_error(full_app, monkeypatch):
    at = full_app

    def broken(image, tags, model_view=False, current=None):
        raise RuntimeError("a bug in the editor")

    monkeypatch.setattr(at.editor, "edit", broken)
    pick_example(at)
    at.checkbox(key="tag-model").check().run()
    at.button(key="generate").click().run()
    assert at.exception and "a bug in the editor" in at.exception[0].message
    assert not at.error
