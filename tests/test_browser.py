"""The real page in headless Chromium: upload a photo, wait for five result cards, take screenshots.

Needs Debian's chromium and chromium-driver (installed here with apt-get when missing and we are
root) and selenium (pip-installed when missing). Skips only when Chromium cannot be installed.
Set NUMBPIE_SCREENSHOTS=docs/screenshots to also save the screenshots for the README.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import make_image

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-dev-shm-usage", "--window-size=1400,1100")
APT_TIMEOUT_S = 900
MAX_SCREENSHOT_BYTES = 400_000


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


@contextlib.contextmanager
def streamlit_server(script: Path, data: Path):
    """`streamlit run SCRIPT` on 127.0.0.1 with a small demo catalog in `data`; yields its URL."""
    port = free_port()
    env = {**os.environ, "NUMBPIE_DATA": str(data), "NUMBPIE_DEMO_PRODUCTS": "24",
           "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    log_path = data / f"streamlit-{port}.log"
    with open(log_path, "wb") as log:
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
            wait_until(healthy, 120, "the streamlit server")
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def server(data_dir):
    with streamlit_server(ROOT / "streamlit_app.py", data_dir) as url:
        yield url


@pytest.fixture(scope="module")
def stand_in_server(data_dir):
    """The page with the stand-in detector, editor and tagger of tests/stand_ins.py."""
    with streamlit_server(ROOT / "tests" / "stand_in_app.py", data_dir) as url:
        yield url


@pytest.fixture
def browser(chromium, webdriver_module):
    os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium-manager download anything
    webdriver = webdriver_module
    options = webdriver.ChromeOptions()
    options.binary_location = chromium[0]
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=chromium[1]))
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


def settle(driver, timeout: float = 300) -> None:
    """Wait until the script run the last interaction started has finished (no 'running' icon)."""
    from selenium.webdriver.common.by import By

    time.sleep(0.5)  # the rerun starts a moment after the click or upload
    wait_until(lambda: not driver.find_elements(By.CSS_SELECTOR, "[data-testid^=stStatusWidgetRunning]"),
               timeout, "the page to finish running")


def buttons(driver, text: str):
    """Buttons labelled `text`; none while the page is replacing them."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return [b for b in driver.find_elements(By.TAG_NAME, "button") if b.text.strip() == text]
    except StaleElementReferenceException:
        return []


def click_text(driver, text: str, timeout: float = 60) -> None:
    """Click the first element whose text is `text`, retrying while the page re-renders it."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def attempt() -> bool:
        try:
            found = driver.find_elements(By.XPATH, f"//*[text()='{text}']")
            if found:
                found[0].click()
            return bool(found)
        except StaleElementReferenceException:
            return False

    wait_until(attempt, timeout, f"{text!r} to click")
    settle(driver)


def upload(driver, path: Path) -> None:
    from selenium.webdriver.common.by import By

    field = wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "input[type=file]"), 600,
                       "the file input (the first run builds the demo catalog)")
    field[0].send_keys(str(path))


def test_upload_gives_five_result_cards(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    from numbpie.synth import random_spec, render_street

    photo = tmp_path / "street.jpg"  # a street photo the demo catalog has not seen
    render_street(random_spec(4_242), seed=4_242)[0].save(photo, quality=90)
    browser.get(server)
    upload(browser, photo)
    cards = wait_until(lambda: len(buttons(browser, "Search with this")) == 5 and buttons(browser, "Search with this"),
                       300, "five result cards")
    settle(browser)
    assert len(cards) == 5
    wait_until(lambda: all(i.get_property("complete") for i in browser.find_elements(By.TAG_NAME, "img")),
               30, "the images to load")
    shot = save_screenshot(browser, "query_results.png", tmp_path)
    assert Image.open(shot).size[0] >= 1000

    redesign = wait_until(lambda: browser.find_elements(By.XPATH, "//*[text()='Redesign it']"), 60,
                          "the edit section")[0]
    browser.execute_script("arguments[0].scrollIntoView();", redesign)
    time.sleep(0.5)
    save_screenshot(browser, "edit_section.png", tmp_path)

    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    browser.execute_script("window.scrollTo(0, 0);")
    upload(browser, bad)
    settle(browser)
    error = wait_until(lambda: [e for e in browser.find_elements(By.CSS_SELECTOR, "[data-testid=stAlert]")
                                if "broken.png cannot be used" in e.text], 120, "the bad-upload error")
    assert "truncated or corrupt" in error[0].text
    wait_until(lambda: not buttons(browser, "Search with this"), 60, "the old results to go")
    save_screenshot(browser, "bad_upload.png", tmp_path)


def test_garment_choice_and_an_edit_with_stand_in_models(stand_in_server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    photo = tmp_path / "two.png"
    make_image(11, size=(320, 240)).save(photo)
    browser.get(stand_in_server)
    upload(browser, photo)
    wait_until(lambda: len(buttons(browser, "Search with this")) == 5, 300, "five result cards")
    assert browser.find_elements(By.XPATH, "//*[contains(text(), 'Several garments found')]")
    settle(browser)
    click_text(browser, "2 top 0.60")
    wait_until(lambda: len(buttons(browser, "Search with this")) == 5, 120, "results for the second garment")
    save_screenshot(browser, "garment_choice.png", tmp_path)

    click_text(browser, "model view")
    generate = wait_until(lambda: [b for b in buttons(browser, "Generate & search") if b.is_enabled()], 60,
                          "Generate & search to be enabled")
    generate[0].click()
    settle(browser)
    heading = wait_until(lambda: browser.find_elements(By.XPATH, "//*[text()='After the edit: top 5']"), 120,
                         "the edited results")
    wait_until(lambda: len(buttons(browser, "Search with this")) == 15, 60, "original and edited top 5")
    redesign = wait_until(lambda: browser.find_elements(By.XPATH, "//*[text()='Redesign it']"), 60,
                          "the edit section")[0]
    browser.execute_script("arguments[0].scrollIntoView();", redesign)
    time.sleep(1)
    assert heading
    save_screenshot(browser, "edit_results.png", tmp_path)
