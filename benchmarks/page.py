"""The demo page's section of docs/benchmarks.md, from the timings tests/test_browser.py measures in Chromium.

Measure: NUMBPIE_BROWSER_TIMINGS=docs/benchmarks/page.json python -m pytest -s tests/test_browser.py
"""

from __future__ import annotations

import statistics

__all__ = ["COMMAND", "TARGETS", "section"]

COMMAND = "NUMBPIE_BROWSER_TIMINGS=docs/benchmarks/page.json python -m pytest -s tests/test_browser.py"
TITLE = "## The demo page in a browser (headless Chromium, bundled models)"
TARGETS = {  # seconds, on a quiet machine: the first start as a maximum, the others as a p50
    "first start to a usable page": 90.0,
    "example click to top 5": 1.0,
    "filter change to new results": 0.5,
    "generate & search to edited top 5": 1.5,
}


def _row(what: str, seconds: list[float]) -> str:
    target = TARGETS.get(what)
    p50 = statistics.median(seconds)
    verdict = "" if target is None else f"≤ {target:g} s: {'met' if p50 <= target else 'not met'}"
    return f"| {what} | {len(seconds)} | {p50:.2f} | {max(seconds):.2f} | {verdict} |"


def section(report: dict) -> list[str]:
    """The markdown section: each interaction's time from the action to its results on screen."""
    start, end = report["load_average"]
    return [
        TITLE, "",
        f"`{COMMAND}`: `streamlit run streamlit_app.py` with the bundled models and a "
        f"{report['products']}-product demo catalog, driven by selenium in a 1400×1000 window as a presenter "
        "runs it. Each figure runs from the click (or the server's start) until the page has finished its "
        "script run and shows the expected results with their pictures loaded: the first start until the "
        "example gallery is there (server start, model loading, building the demo catalog, the browser's "
        "first page load); an example, then the top 5 of its garment; a category filter, then the filtered "
        "top 5 (the query's vector is kept, so only the search runs); Generate & search, then the edited "
        "garment's top 5 beside the original's; Search with this on a result, then that product's top 5 "
        "(searched with its indexed vector).", "",
        "| interaction | n | p50 s | max s | target (quiet machine) |",
        "|---|---|---|---|---|",
        *(_row(what, seconds) for what, seconds in report["seconds"].items()), "",
        *([f"The 90 s first start is for the default 400-product catalog; this run built {report['products']} "
            "(`NUMBPIE_BROWSER_PRODUCTS=400` times the full one).", ""] if report["products"] != 400 else []),
        f"Measured {report['measured']} on {report['cores']} cores; load average {start} at start, {end} at end."
        + (" **The machine was busy** (long training runs at normal priority, the server and browser at "
           "nice 19), so these are far above what a quiet machine gives; rerun there before quoting them."
           if max(start, end) > report["cores"] else ""), "",
    ]
