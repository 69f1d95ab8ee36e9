"""The real page in headless Chromium, driven as a presenter runs it, with the bundled models.

Examples, filters, "Search with this", a GAN edit, uploads good and bad; the page's layout in a
1400x1000 window; and the time each interaction takes to show its results, printed (run with -s).
Needs Debian's chromium and chromium-driver (installed here with apt-get when missing and we are
root) and selenium (pip-installed when missing). Skips only when Chromium cannot be installed.
Set NUMBPIE_SCREENSHOTS=docs/screenshots to also save the screenshots for the README,
NUMBPIE_BROWSER_TIMINGS=FILE.json to also write the timings, and NUMBPIE_BROWSER_PRODUCTS=400
to time the first start with the full demo catalog (24 products by default).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import statistics
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import make_image

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-dev-shm-usage", "--window-size=1400,1000")
VIEWPORT = (1400, 1000)  # the presenter's window: the query, its crop and the top 5 fit in it
APT_TIMEOUT_S = 900
MAX_SCREENSHOT_BYTES = 400_000
PATIENCE_S = 900  # the longest wait for one interaction's results: generous, for busy machines (timings are printed)


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
                  "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)], "seconds": TIMINGS}
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
# page pixels (top, bottom, height); "cards" are the result cards, each the box around a "Search with this";
# "headings" include bold lines ("After the edit: top 5").
PAGE_STATE = """
const all = (s, root = document) => Array.from(root.querySelectorAll(s));
const main = document.querySelector('[data-testid=stMain]');
const place = e => { const r = e.getBoundingClientRect(); return [r.top + scrollY, r.bottom + scrollY, r.height]; };
const cards = all('button', main).filter(b => b.innerText.trim() === 'Search with this')
  .map(b => b.closest('[data-testid=stVerticalBlock]'));
const title = c => c.querySelector('div[title]');
return {
  running: all('[data-testid^=stStatusWidgetRunning]').length > 0,
  captions: all('[data-testid=stImageCaption]', main).map(e => e.innerText.trim()),
  query: all('[data-testid=stImage]', main).slice(0, 2).map(place),
  query_pictures: all('[data-testid=stImage] img', main).slice(0, 2).map(i => i.src),
  cards: cards.map(place),
  titles: cards.map(c => title(c) ? title(c).title : ''),
  title_lines: cards.map(c => title(c) ? title(c).clientHeight / parseFloat(getComputedStyle(title(c)).lineHeight) : 0),
  images_loaded: all('img', main).every(i => i.complete && i.naturalWidth > 0),
  headings: all('h1, h2, h3, strong', main).map(h => h.innerText.trim()),
  alerts: all('[data-testid=stAlert]', main).map(a => a.innerText.trim()),
  generate: all('button', main).filter(b => b.innerText.trim() === 'Generate & search').map(b => !b.disabled),
};
"""


def page_state(driver) -> dict:
    return driver.execute_script(PAGE_STATE)


def shown(driver, done, timeout: float = PATIENCE_S) -> dict:
    """The page once a script run has finished and `done(state)` holds (its pictures loaded)."""
    def ready():
        state = page_state(driver)
        return state if not state["running"] and state["images_loaded"] and done(state) else None

    return wait_until(ready, timeout, "the page to show the expected results", poll=0.05)


def timed_until(driver, what: str, action, done, timeout: float = PATIENCE_S) -> dict:
    """Run `action`, then wait for `done`; the wait, from the action on, is recorded under `what`."""
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
    box = f"//div[@data-testid='stSelectbox'][.//label[normalize-space()='{label}']]"
    click(driver, f"{box}//input")  # the combobox: opens the list of options
    click(driver, f"//*[@role='option'][normalize-space()='{option}']")


def selected(driver, label: str) -> str:
    """The value the select box labelled `label` shows (its text is the label, then the value)."""
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.XPATH, f"//div[@data-testid='stSelectbox'][.//label[normalize-space()='{label}']]")
    return box.text.strip().splitlines()[-1].strip()


def upload(driver, path: Path) -> None:
    from selenium.webdriver.common.by import By

    field = wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "input[type=file]"), 2 * PATIENCE_S,
                       "the file input (the first run builds the demo catalog)")
    field[0].send_keys(str(path))


def open_examples(driver) -> None:
    """Unfold the example gallery (it folds once an example is chosen, so the results stay in view)."""
    if not buttons(driver, "Use this"):
        click(driver, "//*[@data-testid='stExpander']//summary[contains(., 'Examples')]")
        wait_until(lambda: len(buttons(driver, "Use this")) == 8, PATIENCE_S, "the example gallery")
    shown(driver, lambda s: True)


def assert_results_in_view(state: dict) -> None:
    """The query, its crop and five cards of one height, titles at most two lines, all in the first screen."""
    assert len(state["cards"]) == 5 and len(state["query"]) == 2
    bottoms = [bottom for _, bottom, _ in state["query"] + state["cards"]]
    assert max(bottoms) <= VIEWPORT[1], f"results end at {max(bottoms):.0f} px, below the first screen"
    heights = [height for _, _, height in state["cards"]]
    assert max(heights) - min(heights) <= 1, f"cards of different heights: {heights}"


def test_the_page_as_a_presenter_runs_it(server, browser, data_dir, tmp_path):
    from numbpie.app import demo
    from numbpie.synth import random_spec, render_street

    url, started = server
    browser.get(url)
    wait_until(lambda: len(buttons(browser, "Use this")) == 8, 2 * PATIENCE_S, "the example gallery (a first start)",
               poll=0.1)
    timed("first start to a usable page", time.monotonic() - started)

    examples = demo.examples(data_dir / "demo")
    for turn, n in enumerate((0, 1, 2, 0)):  # street photos; the first one again (its query was kept)
        open_examples(browser)
        state = timed_until(browser, "example click to top 5", lambda n=n: buttons(browser, "Use this")[n].click(),
                            lambda s, n=n: s["captions"][:1] == [examples[n].name] and len(s["cards"]) == 5)
        if turn == 0:
            assert_results_in_view(state)
            save_screenshot(browser, "query_results.png", tmp_path)

    for category in ("top", "dress", "top", "dress"):
        timed_until(browser, "filter change to new results", lambda c=category: choose(browser, "Category", c),
                    lambda s, c=category: s["cards"] and all(f" {c}" in t for t in s["titles"]))
    choose(browser, "Category", "all")
    wait_until(lambda: selected(browser, "Category") == "all", PATIENCE_S, "the category filter to be cleared")
    time.sleep(1)  # the rerun starts a moment after the choice
    shown(browser, lambda s: len(s["cards"]) == 5)

    detected = selected(browser, "pattern")  # the style controls start at the garment's own tags
    first = edit_once(browser, "pattern", {detected}, tmp_path, screenshot="edit_results.png")
    edit_once(browser, "pattern", {detected, first}, tmp_path)
    edit_once(browser, "sleeve length", {selected(browser, "sleeve length")}, tmp_path)

    product = page_state(browser)["titles"][0]
    state = timed_until(browser, "search with this to top 5", lambda: buttons(browser, "Search with this")[0].click(),
                        lambda s: s["captions"][:1] == [f"{product} (catalog product)"] and len(s["cards"]) == 5)
    assert product not in state["titles"]  # the query, not one of its matches
    assert state["generate"] == [False]  # the new garment's style controls start at its own tags

    photo = tmp_path / "street.jpg"  # a street photo the demo catalog has not seen
    render_street(random_spec(4_242), seed=4_242)[0].save(photo, quality=90)
    upload(browser, photo)
    shown(browser, lambda s: s["captions"][:1] == ["street.jpg"] and len(s["cards"]) == 5)

    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    browser.execute_script("window.scrollTo(0, 0);")
    upload(browser, bad)
    state = shown(browser, lambda s: any("broken.png cannot be used" in a for a in s["alerts"]))
    assert not state["cards"] and any("truncated or corrupt" in a for a in state["alerts"])
    save_screenshot(browser, "bad_upload.png", tmp_path)


def edit_once(driver, label: str, avoid: set[str], tmp_path: Path, screenshot: str | None = None) -> str:
    """Set the style control `label` to a value not in `avoid`, press Generate & search, time the edited top 5."""
    from selenium.webdriver.common.by import By

    from numbpie.attributes import ATTRIBUTES

    choice = next(v for v in ATTRIBUTES[label.replace(" ", "_")] if v not in avoid)
    choose(driver, label, choice)
    shown(driver, lambda s: s["generate"] == [True] and "After the edit: top 5" not in s["headings"])
    state = timed_until(driver, "generate & search to edited top 5",
                        lambda: buttons(driver, "Generate & search")[0].click(),
                        lambda s: "After the edit: top 5" in s["headings"] and len(s["cards"]) == 15)
    assert any(c in ("shape", "pattern") for c in state["captions"])  # the GAN steps that ran are shown
    if screenshot:
        heading = driver.find_element(By.XPATH, "//h3[normalize-space()='Redesign it']")
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", heading)
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
    assert "two.png" in state["captions"]
    click(browser, "//label[normalize-space()='2 top 0.60']")
    shown(browser, lambda s: len(s["cards"]) == 5 and s["query_pictures"][1] != state["query_pictures"][1])
    save_screenshot(browser, "garment_choice.png", tmp_path)


def test_the_page_figures_section_says_which_targets_are_met():
    from benchmarks import page

    report = {"measured": "2026-12-03 04:00 UTC", "cores": 2, "products": 24, "load_average": [11.0, 12.5],
              "seconds": {"example click to top 5": [0.4, 0.9, 3.0], "filter change to new results": [0.6, 0.8, 0.7]}}
    text = "\n".join(page.section(report))
    assert "| example click to top 5 | 3 | 0.90 | 3.00 | ≤ 1 s: met |" in text
    assert "| filter change to new results | 3 | 0.70 | 0.80 | ≤ 0.5 s: not met |" in text
    assert "The machine was busy" in text and "this run built 24" in text
