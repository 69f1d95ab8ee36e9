"""The real page in headless Chromium, driven as a presenter runs it, with the bundled models.

Examples, category filters, three GAN edits with the bundled editors (each step's picture, the edited
top 5 beside the original's), "Search with this", uploads good and bad, a choice of garments (stand-in
detector); the page's layout in a 1400x1000 window; and the time each interaction takes to show its
results, printed (run with -s).
Needs Debian's chromium and chromium-driver (installed here with apt-get when missing and we are
root) and selenium (pip-installed when missing). Skips only when Chromium cannot be installed.
Set NUMBPIE_SCREENSHOTS=docs/screenshots to also save the screenshots for the README,
NUMBPIE_BROWSER_TIMINGS=FILE.json to also write the timings (NUMBPIE_BROWSER_CONDITIONS: a sentence on
what else ran, written with them), and NUMBPIE_BROWSER_PRODUCTS=400 to time the first start with the
full demo catalog (24 products by default).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_image

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-dev-shm-usage", "--window-size=1400,1000")
VIEWPORT = (1400, 1000)  # the presenter's window: the query, its crop and the top 5 fit in it
APT_TIMEOUT_S = 900
MAX_SCREENSHOT_BYTES = 400_000
PATIENCE_S = 300  # the longest wait for one interaction's results: generous, for busy machines (timings are printed)
FIRST_START_S = 1800  # server start, model loading and building the demo catalog (400 products, on a busy machine)


def find_chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)
    return (browser, driver) if browser and driver else None


def install_chromium() -> str | None:
    """Install Debian's chromium and its driver; returns why not, or None on success."""
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        return "Chromium is not installed and apt-get cannot be run as root here"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    deadline = time.monotonic() + APT_TIMEOUT_S
    for command in (["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium", "chromium-driver"]):
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True,
                                  timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return f"{' '.join(command[:2])} took more than {APT_TIMEOUT_S} s"
        if done.returncode:
            return f"{' '.join(command[:2])} failed: {done.stderr.strip().splitlines()[-1:]}"
    return None


@pytest.fixture(scope="module")
def chromium() -> tuple[str, str]:
    found = find_chromium()
    if found is None:
        reason = install_chromium()
        found = find_chromium()
        if found is None:
            pytest.skip(reason or "chromium and chromium-driver could not be installed")
    return found


@pytest.fixture(scope="module")
def webdriver_module():
    try:
        import selenium  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "selenium>=4.20"], check=True, timeout=600)
    from selenium import webdriver

    return webdriver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout: float, what: str, poll: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what}.")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


TIMINGS: dict[str, list[float]] = {}  # what -> seconds, printed and written at the end of the module


def timed(what: str, seconds: float) -> None:
    TIMINGS.setdefault(what, []).append(round(seconds, 3))


@pytest.fixture(scope="module", autouse=True)
def report_timings():
    """Print each interaction's p50 and max (pytest -s shows them); write them to $NUMBPIE_BROWSER_TIMINGS."""
    load_before = os.getloadavg()[0]
    yield
    for what, seconds in TIMINGS.items():
        print(f"\nbrowser timing: {what}: p50 {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s, "
              f"n={len(seconds)} {seconds}")
    if os.environ.get("NUMBPIE_BROWSER_TIMINGS"):
        report = {"measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count(),
                  "products": int(os.environ.get("NUMBPIE_BROWSER_PRODUCTS", "24")),
                  "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)], "seconds": TIMINGS,
                  **({"conditions": os.environ["NUMBPIE_BROWSER_CONDITIONS"]}
                     if os.environ.get("NUMBPIE_BROWSER_CONDITIONS") else {})}
        Path(os.environ["NUMBPIE_BROWSER_TIMINGS"]).write_text(json.dumps(report, indent=1) + "\n")


@contextlib.contextmanager
def streamlit_server(script: Path, data: Path):
    """`streamlit run SCRIPT` on 127.0.0.1 with a demo catalog in `data`; yields (URL, when it was started)."""
    port = free_port()
    env = {**os.environ, "NUMBPIE_DATA": str(data),
           "NUMBPIE_DEMO_PRODUCTS": os.environ.get("NUMBPIE_BROWSER_PRODUCTS", "24"),
           "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    log_path = data / f"streamlit-{port}.log"
    with open(log_path, "wb") as log:
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

        def healthy():
            if process.poll() is not None:
                raise AssertionError(f"streamlit exited: {log_path.read_text()[-2000:]}")
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).status == 200
            except OSError:
                return False

        try:
            wait_until(healthy, 300, "the streamlit server")
            yield f"http://127.0.0.1:{port}", started
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def server(data_dir):
    with streamlit_server(ROOT / "streamlit_app.py", data_dir) as started:
        yield started


@pytest.fixture(scope="module")
def stand_in_server(data_dir):
    """The page with the stand-in detector, editor and tagger of tests/stand_ins.py (two garments a photo)."""
    with streamlit_server(ROOT / "tests" / "stand_in_app.py", data_dir) as started:
        yield started


@pytest.fixture
def browser(chromium, webdriver_module):
    os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium-manager download anything
    webdriver = webdriver_module
    options = webdriver.ChromeOptions()
    options.binary_location = chromium[0]
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=chromium[1]))
    width, height = VIEWPORT
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    yield driver
    driver.quit()


def save_screenshot(driver, name: str, tmp_path: Path) -> Path:
    """A PNG of the window, reduced to a palette so it stays small; also in $NUMBPIE_SCREENSHOTS."""
    # the pointer to the page's header, so that no picture or the sidebar shows its hover controls
    driver.execute_cdp_cmd("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": VIEWPORT[0] // 2, "y": 20})
    time.sleep(0.3)
    picture = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    small = picture.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    targets = [tmp_path / name]
    if os.environ.get("NUMBPIE_SCREENSHOTS"):
        targets.append(ROOT / os.environ["NUMBPIE_SCREENSHOTS"] / name)
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        small.save(target, optimize=True)
        assert target.stat().st_size < MAX_SCREENSHOT_BYTES
    return targets[0]


# One look at the page in one script call, so nothing goes stale between reads. Positions are in
# page pixels (top, bottom, height); "cards" are the result cards, each the box around a "Search with this",
# in page order (the top k, then the original and the edited top 5 of an edit); "pictures" are the main
# area's images as (caption, URL, top, bottom); "headings" include bold lines ("After the edit: top 5"); a title that
# "overflows" has more text than its two lines show.
PAGE_STATE = """
const all = (s, root = document) => Array.from(root.querySelectorAll(s));
const main = document.querySelector('[data-testid=stMain]');
const place = e => { const r = e.getBoundingClientRect(); return [r.top + scrollY, r.bottom + scrollY, r.height]; };
const cards = all('button', main).filter(b => b.innerText.trim() === 'Search with this')
  .map(b => b.closest('[data-testid=stVerticalBlock]'));
const title = c => c.querySelector('div[title]');
return {
  running: all('[data-testid^=stStatusWidgetRunning]').length > 0,
  stale: all('[data-stale=true]').length,
  captions: all('[data-testid=stImageCaption]', main).map(e => e.innerText.trim()),
  query: all('[data-testid=stImage]', main).slice(0, 2).map(place),
  query_pictures: all('[data-testid=stImage] img', main).slice(0, 2).map(i => i.src),
  cards: cards.map(place),
  titles: cards.map(c => title(c) ? title(c).title : ''),
  title_lines: cards.map(c => title(c) ? title(c).clientHeight / parseFloat(getComputedStyle(title(c)).lineHeight) : 0),
  title_overflows: cards.map(c => title(c) ? title(c).scrollHeight > title(c).clientHeight + 1 : false),
  scores: cards.map(c => { const m = c.querySelector('[data-testid=stMetricValue]'); return m ? m.innerText.trim() : ''; }),
  pictures: all('[data-testid=stImage]', main).map(e => {
    const caption = e.querySelector('[data-testid=stImageCaption]'), img = e.querySelector('img');
    return [caption ? caption.innerText.trim() : '', img ? img.src : '', ...place(e).slice(0, 2)];
  }),
  images_loaded: all('img', main).every(i => i.complete && i.naturalWidth > 0),
  tables_drawn: all('[data-testid=stTable]').every(t => t.querySelector('td')),
  headings: all('h1, h2, h3, strong', main).map(h => h.innerText.trim()),
  notes: all('[data-testid=stCaptionContainer]', main).map(e => e.innerText.trim()),
  alerts: all('[data-testid=stAlert]', main).map(a => a.innerText.trim()),
  generate: all('button', main).filter(b => b.innerText.trim() === 'Generate & search').map(b => !b.disabled),
};
"""


def page_state(driver) -> dict:
    return driver.execute_script(PAGE_STATE)


def shown(driver, done, timeout: float = PATIENCE_S) -> dict:
    """The page once a script run has finished and `done(state)` holds (its pictures and card titles drawn).

    The "running" icon shows half a second into a run; the elements of the previous run are marked stale
    at once, until the new run sends their replacements or ends. A card's title and score, and the
    sidebar's timings table, may be drawn a moment after the rest.
    """
    def ready():
        state = page_state(driver)
        drawn = state["images_loaded"] and all(state["titles"] + state["scores"]) and state["tables_drawn"]
        return state if not (state["running"] or state["stale"]) and drawn and done(state) else None

    return wait_until(ready, timeout, "the page to show the expected results", poll=0.05)


def timed_until(driver, what: str, action, done, timeout: float = PATIENCE_S) -> dict:
    """Run `action`, then wait for `done`; the wait, from the action on, is recorded under `what`.

    Find what `action` clicks before: `buttons` asks the browser for each button's text and state,
    two round trips a button (0.1-0.3 s on a page of ~30), which is the test's time, not the page's.
    """
    start = time.monotonic()
    action()
    state = shown(driver, done, timeout)
    timed(what, time.monotonic() - start)
    return state


def buttons(driver, text: str):
    """Enabled buttons labelled `text`; none while the page is replacing them."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return [b for b in driver.find_elements(By.TAG_NAME, "button") if b.text.strip() == text and b.is_enabled()]
    except StaleElementReferenceException:
        return []


def click(driver, xpath: str, timeout: float = PATIENCE_S) -> None:
    """Click the first element at `xpath`, retrying while the page re-renders it."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By

    def attempt() -> bool:
        try:
            found = driver.find_elements(By.XPATH, xpath)
            if found:
                driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", found[0])
                found[0].click()
            return bool(found)
        except (StaleElementReferenceException, WebDriverException):
            return False

    wait_until(attempt, timeout, f"{xpath} to click", poll=0.05)


def choose(driver, label: str, option: str) -> None:
    """Pick `option` in the select box labelled `label`."""
    open_options(driver, label)
    pick(driver, option)


def open_options(driver, label: str) -> None:
    """Open the list of options of the select box labelled `label` (its combobox input)."""
    click(driver, f"//div[@data-testid='stSelectbox'][.//label[normalize-space()='{label}']]//input")


def pick(driver, option: str) -> None:
    """Pick `option` in the open list of options."""
    click(driver, f"//*[@role='option'][normalize-space()='{option}']")


def selected(driver, label: str) -> str:
    """The value the select box labelled `label` shows (the value of its combobox input)."""
    from selenium.webdriver.common.by import By

    box = f"//div[@data-testid='stSelectbox'][.//label[normalize-space()='{label}']]//input[@role='combobox']"
    return driver.find_element(By.XPATH, box).get_property("value")


def upload(driver, path: Path) -> None:
    from selenium.webdriver.common.by import By

    field = wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "input[type=file]"), FIRST_START_S,
                       "the file input (the first run builds the demo catalog)")
    field[0].send_keys(str(path))


def open_examples(driver) -> None:
    """Unfold the example gallery (it folds once an example is chosen, so the results stay in view)."""
    if not buttons(driver, "Use this"):
        click(driver, "//*[@data-testid='stExpander']//summary[contains(., 'Examples')]")
        wait_until(lambda: len(buttons(driver, "Use this")) == 8, PATIENCE_S, "the example gallery")
    shown(driver, lambda s: True)


def assert_results_in_view(state: dict) -> None:
    """The query, its crop and five cards of one height, titles two lines tall, all in the first screen."""
    assert len(state["cards"]) == 5 and len(state["query"]) == 2
    bottoms = [bottom for _, bottom, _ in state["query"] + state["cards"]]
    assert max(bottoms) <= VIEWPORT[1], f"results end at {max(bottoms):.0f} px, below the first screen"
    heights = [height for _, _, height in state["cards"]]
    assert max(heights) - min(heights) <= 1, f"cards of different heights: {heights}"
    assert all(1.95 <= lines <= 2.05 for lines in state["title_lines"]), state["title_lines"]
    # the demo's titles run to three or four lines at this width: the clamp cuts them, the hover shows them
    assert any(state["title_overflows"]), state["titles"]


def matches(state: dict, cards: slice = slice(None)) -> list[tuple[str, str]]:
    """(title, score) of the result cards in `cards`."""
    return list(zip(state["titles"], state["scores"], strict=True))[cards]


def picture(url: str) -> Image.Image:
    """A picture the page shows, fetched from the server."""
    with urllib.request.urlopen(url, timeout=30) as response:
        return Image.open(io.BytesIO(response.read())).convert("RGB")


def test_the_page_as_a_presenter_runs_it(server, browser, data_dir, tmp_path):
    from numbpie.app import demo
    from numbpie.synth import random_spec, render_street

    url, started = server
    browser.get(url)
    wait_until(lambda: len(buttons(browser, "Use this")) == 8, FIRST_START_S, "the example gallery (a first start)",
               poll=0.1)
    timed("first start to a usable page", time.monotonic() - started)

    examples = demo.examples(data_dir / "demo")
    results = {}
    for turn, n in enumerate((0, 1, 2, 0)):  # street photos; the first one again (its query was kept)
        open_examples(browser)
        example = buttons(browser, "Use this")[n]
        state = timed_until(browser, "example click to top 5", example.click,
                            lambda s, n=n: s["captions"][:1] == [examples[n].name] and len(s["cards"]) == 5)
        assert not state["alerts"] and matches(state) == results.setdefault(n, matches(state))
        if turn == 0:
            assert_results_in_view(state)
            save_screenshot(browser, "query_results.png", tmp_path)
    assert len(set(map(tuple, results.values()))) == 3  # three photos, three different top 5s

    for category in ("top", "dress", "top", "dress"):
        open_options(browser, "Category")  # timed from the choice on
        timed_until(browser, "filter change to new results", lambda c=category: pick(browser, c),
                    lambda s, c=category: len(s["cards"]) == 5 and all(f" {c}" in t for t in s["titles"]))
    choose(browser, "Category", "all")
    wait_until(lambda: selected(browser, "Category") == "all", PATIENCE_S, "the category filter to be cleared")
    shown(browser, lambda s: matches(s) == results[0])  # the first photo's unfiltered top 5 again

    detected = selected(browser, "pattern")  # the style controls start at the garment's own tags
    first = edit_once(browser, "pattern", {detected}, ["crop", "pattern"], tmp_path, screenshot="edit_results.png")
    edit_once(browser, "pattern", {detected, first}, ["crop", "pattern"], tmp_path)
    # the new pattern stays chosen: a sleeve length and the model view on top of it run every step
    edit_once(browser, "sleeve length", {selected(browser, "sleeve length")}, ["crop", "shape", "pattern", "model"],
              tmp_path, model_view=True)

    product = page_state(browser)["titles"][0]
    state = timed_until(browser, "search with this to top 5", buttons(browser, "Search with this")[0].click,
                        lambda s: s["captions"][:1] == [f"{product} (catalog product)"] and len(s["cards"]) == 5)
    assert product not in state["titles"]  # the query, not one of its matches
    assert state["generate"] == [False]  # the new garment's style controls start at its own tags
    assert "After the edit: top 5" not in state["headings"]  # the last garment's edit went with it

    photo = tmp_path / "street.jpg"  # a street photo the demo catalog has not seen
    render_street(random_spec(4_242), seed=4_242)[0].save(photo, quality=90)
    upload(browser, photo)
    state = shown(browser, lambda s: s["captions"][:1] == ["street.jpg"] and len(s["cards"]) == 5)
    assert not state["alerts"] and matches(state) not in results.values()

    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    browser.execute_script("window.scrollTo(0, 0);")
    upload(browser, bad)
    state = shown(browser, lambda s: any("broken.png cannot be used" in a for a in s["alerts"]))
    assert not state["cards"] and any("truncated or corrupt" in a for a in state["alerts"])
    save_screenshot(browser, "bad_upload.png", tmp_path)


def edit_once(driver, label: str, avoid: set[str], expected: list[str], tmp_path: Path, model_view: bool = False,
              screenshot: str | None = None) -> str:
    """Set the style control `label` to a value not in `avoid` (and tick the model view), press Generate &
    search: the `expected` GAN steps are shown, each changed the picture, and the edited top 5 differ."""
    from selenium.webdriver.common.by import By

    from numbpie.attributes import ATTRIBUTES

    choice = next(v for v in ATTRIBUTES[label.replace(" ", "_")] if v not in avoid)
    choose(driver, label, choice)
    if model_view:
        click(driver, "//div[@data-testid='stCheckbox'][.//p[normalize-space()='model view']]//label")
    shown(driver, lambda s: s["generate"] == [True] and "After the edit: top 5" not in s["headings"]
          and selected(driver, label) == choice)
    original = matches(page_state(driver))
    state = timed_until(driver, "generate & search to edited top 5", buttons(driver, "Generate & search")[0].click,
                        lambda s: "After the edit: top 5" in s["headings"] and len(s["cards"]) == 15)
    steps = [(name, url) for name, url, *_ in state["pictures"] if name in ("crop", "shape", "pattern", "model")]
    assert [name for name, _ in steps] == expected and f"GAN steps: {' → '.join(expected)}" in state["notes"]
    for (_, before), (name, after) in itertools.pairwise(steps):  # each step changed the picture it was given
        a, b = picture(before), picture(after)
        change = np.abs(np.asarray(a, float) - np.asarray(b.resize(a.size), float)).mean()
        assert change > 1, f"the {name} step left the garment as it was (mean change {change:.2f})"
    assert matches(state, slice(0, 5)) == original and matches(state, slice(5, 10)) == original[:5]
    assert matches(state, slice(10, 15)) != original[:5]  # the edited garment finds other products
    tops, bottoms = zip(*[place[:2] for place in state["cards"][5:]],
                        *[place for name, _, *place in state["pictures"] if name in expected], strict=True)
    assert max(bottoms) - min(tops) <= VIEWPORT[1], "the steps and the two top 5s do not fit one screen"
    if screenshot:  # the last card at the bottom of the window: the controls above as far as they fit
        last = driver.find_elements(By.XPATH, "//button[normalize-space()='Search with this']")[-1]
        driver.execute_script("arguments[0].closest('[data-testid=stVerticalBlock]').scrollIntoView({block: 'end'});",
                              last)
        time.sleep(0.5)
        save_screenshot(driver, screenshot, tmp_path)
    return choice


def test_a_choice_of_garments(stand_in_server, browser, tmp_path):
    photo = tmp_path / "two.png"
    make_image(11, size=(320, 240)).save(photo)
    url, _ = stand_in_server
    browser.get(url)
    upload(browser, photo)
    state = shown(browser, lambda s: len(s["cards"]) == 5)
    assert state["captions"][:2] == ["two.png", "searched for"]
    left = picture(state["query_pictures"][1])  # now: the server drops a run's pictures after the next run
    click(browser, "//label[normalize-space()='2 top 0.60']")
    second = shown(browser, lambda s: len(s["cards"]) == 5 and s["query_pictures"][1] != state["query_pictures"][1])
    # the stand-in detector's two garments are the photo's halves: the crop shows the right half now
    assert picture(second["query_pictures"][1]).tobytes() != left.tobytes()
    assert matches(second) != matches(state)  # the other garment finds other products
    save_screenshot(browser, "garment_choice.png", tmp_path)

