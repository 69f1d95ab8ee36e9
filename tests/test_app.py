"""The Streamlit page, driven headless with streamlit.testing.v1.AppTest."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """One small demo catalog for the module; the first test's app run builds it."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture
def app(data_dir, monkeypatch):
    monkeypatch.setenv("NUMBPIE_DATA", str(data_dir))
    monkeypatch.setenv("NUMBPIE_DEMO_PRODUCTS", "24")
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    assert not at.exception
    return at


def test_first_run_builds_the_demo_and_asks_for_a_query(app):
    assert any("Upload a photo" in info.value for info in app.info)
    assert any("randomly initialised" in w.value for w in app.warning)  # labelled as such


def test_an_example_query_gives_k_results(app):
    example_buttons = [b for b in app.button if b.key.startswith("example-")]
    assert example_buttons
    example_buttons[0].click().run()
    assert not app.exception and not app.error
    cards = [b for b in app.button if b.key.startswith("result-")]
    assert len(cards) == 5
    scores = [float(m.value) for m in app.metric]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1.0001 for s in scores)


def test_search_with_this_makes_a_result_the_new_query(app):
    [b for b in app.button if b.key.startswith("example-")][1].click().run()
    first = [b for b in app.button if b.key.startswith("result-")][0]
    first.click().run()
    assert not app.exception
    assert float(app.metric[0].value) == pytest.approx(1.0, abs=1e-3)  # the product finds itself


def test_k_and_category_filters(app):
    [b for b in app.button if b.key.startswith("example-")][0].click().run()
    app.sidebar.slider[1].set_value(3).run()
    app.sidebar.selectbox[0].select("top").run()
    assert not app.exception
    cards = [b for b in app.button if b.key.startswith("result-")]
    assert 1 <= len(cards) <= 3


def test_a_bad_upload_gives_one_error_and_the_page_keeps_working(app):
    app.session_state.query = ("broken.png", b"\x89PNG\r\n\x1a\n not really")
    app.run()
    assert not app.exception
    assert len(app.error) == 1 and "broken.png" in app.error[0].value
    [b for b in app.button if b.key.startswith("example-")][0].click().run()
    assert not app.error and len([b for b in app.button if b.key.startswith("result-")]) == 5
