"""The Streamlit page, driven headless with streamlit.testing.v1.AppTest."""

import gc
import io
import math
from pathlib import Path

import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from numbpie import images
from numbpie.app import assemble, demo
from numbpie.app.indexer import open_catalog
from numbpie.app.pipeline import Pipeline
from numbpie.errors import EditError
from tests import stand_ins

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")


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
    # The first run builds the demo catalog, which takes many minutes on a busy machine.
    at = AppTest.from_file(APP, default_timeout=1200)
    at.run()
    assert not at.exception
    return at


@pytest.fixture
def app(data_dir, monkeypatch, real_models):
    """The page with the bundled models (loaded once for the module)."""
    monkeypatch.setattr(assemble, "default_models", lambda embedder=None: real_models)
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


@pytest.fixture
def counted_app(data_dir, monkeypatch, real_models):
    """full_app whose detector, embedder and tagger count their calls in `at.calls`."""
    calls = {"detect": 0, "embed": 0, "tag": 0}
    loaded = stand_ins.with_stand_ins(real_models)

    def counting(name, function):
        def counted(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)
        return counted

    monkeypatch.setattr(loaded.detector, "detect", counting("detect", loaded.detector.detect))
    monkeypatch.setattr(loaded.tagger, "tag", counting("tag", loaded.tagger.tag))
    monkeypatch.setattr(real_models.embedder, "embed", counting("embed", real_models.embedder.embed))
    monkeypatch.setattr(assemble, "default_models", lambda embedder=None: loaded)
    st.cache_resource.clear()
    at = start(data_dir, monkeypatch)
    calls.update(dict.fromkeys(calls, 0))  # from here on: the first run may have built the demo catalog
    at.calls = calls
    yield at
    st.cache_resource.clear()


def result_keys(at, prefix="result-"):
    return [b.key for b in at.button if b.key.startswith(prefix)]


def keyed(widgets, name):
    """The one widget whose key is `name` followed by the query's number (each query gets new widgets)."""
    [widget] = [w for w in widgets if w.key and name in (w.key, w.key.rsplit("-", 1)[0])]
    return widget


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


def test_the_demo_catalog_is_written_outside_the_folder_streamlit_watches(monkeypatch):
    monkeypatch.delenv("NUMBPIE_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    # Streamlit watches the app's folder recursively: a catalog rendered there floods its file watcher.
    assert not demo.default_folder().resolve().is_relative_to(ROOT)


def test_search_with_this_searches_with_the_products_indexed_vector(counted_app):
    at = counted_app
    pick_example(at, 1)
    before = dict(at.calls)
    first = at.button(key=result_keys(at)[0])
    product = int(first.key.split("-")[1])
    first.click().run()
    assert not at.exception and not at.error
    assert at.calls["detect"] == before["detect"] and at.calls["embed"] == before["embed"]  # nothing re-detected
    assert len(result_keys(at)) == 5 and f"result-{product}" not in result_keys(at)  # it is the query, not a match
    query = at.main.image[0].captions[0]
    assert query.endswith("(catalog product)")
    scores = [float(m.value) for m in at.metric[:5]]
    assert scores == sorted(scores, reverse=True) and scores[0] < 1.0001


def test_k_and_category_filters(app, data_dir):
    pick_example(app)
    catalog = open_catalog(data_dir / "demo")

    def categories():
        return [p.category for p in catalog.get(int(key.split("-")[1]) for key in result_keys(app))]

    app.sidebar.slider[1].set_value(3).run()  # k
    assert not app.exception and len(result_keys(app)) == 3
    for category in ("top", "dress"):
        app.sidebar.selectbox[0].select(category).run()
        assert not app.exception and not app.error
        assert categories() == [category] * 3  # both cannot hold if the filter were ignored


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
    keyed(app.checkbox, "manual_crop").check().run()
    keyed(app.slider, "crop_x").set_value((0, 20)).run()
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


def test_the_uploader_takes_every_format_the_error_message_offers(app, data_dir):
    [uploader] = app.file_uploader
    allowed = {kind.lstrip(".").lower() for kind in uploader.allowed_type}
    assert {kind.lower() for kind in images.SUPPORTED_FORMATS} <= allowed  # "use one of JPEG, ..., GIF"
    bmp = io.BytesIO()
    Image.open(demo.examples(data_dir / "demo")[0]).save(bmp, "BMP")
    uploader.set_value(("street.bmp", bmp.getvalue(), "image/bmp")).run()
    assert not app.exception and not app.error
    assert len(result_keys(app)) == 5 and app.main.image[0].captions[0] == "street.bmp"


def test_several_garments_offer_a_choice(full_app, monkeypatch):
    searched = []
    prepare = Pipeline.prepare

    def spy(self, source, **options):
        result = prepare(self, source, **options)
        searched.append(result.box)
        return result

    monkeypatch.setattr(Pipeline, "prepare", spy)
    at = full_app
    pick_example(at)
    choice = keyed(at.radio, "garment")
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
    assert keyed(at.selectbox, "tag-pattern").value == "solid"
    assert keyed(at.selectbox, "tag-fit").value == "tight"
    assert keyed(at.selectbox, "tag-sleeve_length").value == "keep"
    assert at.button(key="generate").disabled  # nothing changed yet
    keyed(at.selectbox, "tag-pattern").select("floral").run()
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
    assert "GAN steps: crop → shape → pattern" in [c.value for c in at.caption]  # the steps that ran
    # the stand-in tagger still reads solid on the edit, so solid products come first, and the page says so
    assert "**After the edit: top 5** (pattern solid first)" in [m.value for m in at.markdown]


def test_an_edit_stays_through_a_filter_change_without_editing_again(full_app):
    at = full_app
    pick_example(at)
    keyed(at.selectbox, "tag-pattern").select("floral").run()
    at.button(key="generate").click().run()
    at.sidebar.slider[1].set_value(3).run()  # k
    assert not at.exception and not at.error
    assert len([b for b in at.button if b.key.startswith("after-")]) == 3
    assert len(at.editor.calls) == 1  # the edited garment and its vector were kept
    keyed(at.selectbox, "tag-pattern").select("stripes").run()
    assert not [b for b in at.button if b.key.startswith("after-")]  # other tags: press the button again


def test_a_filter_change_only_re_searches(counted_app):
    at = counted_app
    pick_example(at)
    once = dict(at.calls)
    assert once == {"detect": 1, "embed": 1, "tag": 1}
    at.sidebar.slider[1].set_value(3).run()  # k
    at.sidebar.slider[2].set_value(0.05).run()  # minimum score
    at.sidebar.selectbox[0].select("top").run()  # category
    keyed(at.checkbox, "tag-model").check().run()  # a style control alone changes nothing searched
    assert not at.exception and not at.error
    assert at.calls == once
    assert len(result_keys(at)) <= 3
    at.sidebar.slider[0].set_value(0.6).run()  # the detector threshold: detect and embed again
    assert at.calls["detect"] == 2 and at.calls["embed"] == 2


def test_the_models_stay_out_of_the_collections_streamlit_runs_after_each_run(app, real_models):
    """Streamlit collects every generation after each script run: scanning the models' ~680k objects
    held the GIL ~0.35 s, and each run's last elements and its pictures reached the browser that late."""
    pick_example(app)
    tracked = {id(thing) for thing in gc.get_objects()}  # what a collection scans (frozen objects are not)
    assert id(real_models) not in tracked and id(real_models.embedder) not in tracked


def test_a_script_run_leaves_tensorflow_s_kernels_alone(app, monkeypatch):
    """Streamlit clears Keras's session after each script run, which empties TensorFlow's kernel cache:
    the next photo's detection rebuilt its kernels (6 ms -> ~180 ms on the 2-core machine)."""
    import keras

    cleared = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *args, **kwargs: cleared.append(args))
    pick_example(app)
    assert not cleared


def test_search_with_this_starts_the_style_controls_afresh(counted_app):
    at = counted_app
    pick_example(at)
    keyed(at.selectbox, "tag-pattern").select("floral").run()
    keyed(at.checkbox, "tag-model").check().run()
    assert not at.button(key="generate").disabled
    at.button(key=result_keys(at)[0]).click().run()
    assert not at.exception
    assert keyed(at.selectbox, "tag-pattern").value == "solid"  # the new garment's own tags
    assert keyed(at.checkbox, "tag-model").value is False
    assert at.button(key="generate").disabled


def test_the_example_gallery_folds_once_an_example_is_chosen(app):
    assert len([b for b in app.button if b.key.startswith("example-")]) == 8
    pick_example(app)
    assert not [b for b in app.button if b.key.startswith("example-")]  # the results move up
    assert len(result_keys(app)) == 5


def test_an_edit_the_editor_refuses_is_one_error(full_app, monkeypatch):
    at = full_app

    def refuse(image, tags, model_view=False, current=None):
        raise EditError("The model view needs a pix2pix generator.")

    monkeypatch.setattr(at.editor, "edit", refuse)
    pick_example(at)
    keyed(at.checkbox, "tag-model").check().run()
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
    keyed(at.checkbox, "tag-model").check().run()
    at.button(key="generate").click().run()
    assert at.exception and "a bug in the editor" in at.exception[0].message
    assert not at.error
