"""The demo page's section of docs/benchmarks.md, from the timings tests/test_browser.py measures in Chromium.

Measure: NUMBPIE_BROWSER_TIMINGS=docs/benchmarks/page.json python -m pytest -s tests/test_browser.py
"""

from __future__ import annotations

import statistics

__all__ = ["COMMAND", "TARGETS", "section"]

COMMAND = "NUMBPIE_BROWSER_TIMINGS=docs/benchmarks/page.json python -m pytest -s tests/test_browser.py"
TITLE = "## The demo page in a browser (headless Chromium, bundled models)"
FIRST_START = "first start to a usable page"
FULL_DEMO = 400  # products in the default demo catalog, which the first-start target is for
TARGETS = {  # seconds, on a quiet machine: the first start as a maximum, the others as a p50
    FIRST_START: 90.0,
    "example click to top 5": 1.0,
    "filter change to new results": 0.5,
    "generate & search to edited top 5": 1.5,
}


def _row(what: str, seconds: list[float], products: int) -> str:
    target = TARGETS.get(what)
    p50 = statistics.median(seconds)
    verdict = "" if target is None else f"≤ {target:g} s: {'met' if p50 <= target else 'not met'}"
    if what == FIRST_START and products != FULL_DEMO:
        verdict = f"≤ {target:g} s with {FULL_DEMO} products: not measured"
    return f"| {what} | {len(seconds)} | {p50:.2f} | {max(seconds):.2f} | {verdict} |"


def section(report: dict) -> list[str]:
    """The markdown section: each interaction's time from the action to its results on screen."""
    start, end = report["load_average"]
    return [
        TITLE, "",
        f"`{COMMAND}`: `streamlit run streamlit_app.py` with the bundled models and a "
        f"{report['products']}-product demo catalog, driven by selenium in a 1400×1000 window as a presenter "
        "runs it. Each figure runs from the click (or the server's start) until the page has finished its "
        "script run and shows the expected results with their pictures, titles and scores drawn: the first "
        "start until the example gallery is there (server start, model loading, building the demo catalog, the browser's "
        "first page load); an example, then the top 5 of its garment; a category chosen, then the filtered "
        "top 5 (the query's vector is kept, so only the search runs); Generate & search, then the edited "
        "garment's top 5 beside the original's; Search with this on a result, then that product's top 5 "
        "(searched with its indexed vector).", "",
        "| interaction | n | p50 s | max s | target (quiet machine) |",
        "|---|---|---|---|---|",
        *(_row(what, seconds, report["products"]) for what, seconds in report["seconds"].items()), "",
        *([f"The {TARGETS[FIRST_START]:g} s first start is for the default {FULL_DEMO}-product catalog; this run "
           f"built {report['products']} (`NUMBPIE_BROWSER_PRODUCTS={FULL_DEMO}` times the full one).", ""]
          if report["products"] != FULL_DEMO else []),
        f"Measured {report['measured']} on {report['cores']} cores; load average {start} at start, {end} at end."
        + (f" {report['conditions']}" if report.get("conditions") else "")
        + (" **The machine was busy** (over the run's last minute, more runnable jobs than cores, the page's "
           "server and browser among them), so these are above what a quiet machine gives; rerun there before "
           "quoting them." if end > report["cores"] else ""), "",
    ]
