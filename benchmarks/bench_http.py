"""The HTTP API under load: C concurrent clients send N street-photo searches to `numbpie serve` on loopback.

    python -m benchmarks.bench_http [--clients 8] [--searches 2000] [--url URL] [--out docs/benchmarks.md]
    python -m benchmarks.bench_http --from-json docs/benchmarks/http.json   # re-render the section only

Without --url it starts `python -m numbpie serve` on the demo catalog (rendered on first use).
Latency is per request, from send to the whole answer; requests/s is searches over the wall time
of the timed run. The section is written into docs/benchmarks.md (replacing an older one) and the
raw figures into docs/benchmarks/http.json; `benchmarks.write` re-renders it from there.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also runnable as a script
    sys.path.insert(0, str(ROOT))

from benchmarks.common import machine  # noqa: E402
from benchmarks.server import running_server  # noqa: E402

__all__ = ["load_test", "section", "splice"]

TITLE = "## HTTP API under load (POST /search on loopback)"
WARMUP = 16


def _queries(folder: Path, count: int = 32) -> list[bytes]:
    """Street photos of the demo catalog: the kind of photo a shop's customers upload."""
    photos = sorted((folder / "street").glob("*.*"), key=lambda p: (len(p.stem), p.stem))[:count]
    if not photos:
        raise SystemExit(f"no street photos under {folder}/street")
    return [p.read_bytes() for p in photos]


def load_test(url: str, queries: list[bytes], clients: int, searches: int, headers: dict | None = None) -> dict:
    """`searches` POST /search calls from `clients` threads, each with its own connection; latencies and errors."""
    import httpx

    latencies: list[float] = []
    steps: dict[str, list[float]] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def client(tickets, count: int) -> None:
        with httpx.Client(base_url=url, timeout=120, headers=headers) as http:
            while (n := next(tickets)) < count:
                data = queries[n % len(queries)]
                start = time.perf_counter()
                try:
                    reply = http.post("/search", files={"image": ("street.jpg", data, "image/jpeg")})
                    ok, body = reply.status_code == 200, reply.json()
                except (httpx.HTTPError, ValueError) as error:
                    ok, body = False, {"error": f"{type(error).__name__}: {error}"}
                seconds = time.perf_counter() - start
                with lock:
                    if not ok:
                        errors.append(str(body)[:200])
                        continue
                    latencies.append(seconds)
                    for step, ms in body["timings_ms"].items():
                        steps.setdefault(step, []).append(ms)

    def run(count: int) -> float:
        """Wall seconds for `count` searches shared by the clients (a shared ticket counter)."""
        tickets = itertools.count()
        threads = [threading.Thread(target=client, args=(tickets, count)) for _ in range(clients)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - start

    run(WARMUP)  # untimed: the first requests pay for lazy initialisation in the server
    warmup_errors = len(errors)
    latencies.clear()
    steps.clear()
    errors.clear()
    wall = run(searches)
    ms = np.asarray(latencies or [np.nan]) * 1000  # all failed: NaN figures, the errors say why
    return {
        "clients": clients, "searches": searches, "errors": len(errors), "error_examples": errors[:5],
        "warmup_errors": warmup_errors, "wall_s": wall, "requests_per_s": len(latencies) / wall,
        "p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()),
        "server_steps_p50_ms": {step: float(np.median(v)) for step, v in steps.items()},
        "distinct_photos": len(queries),
    }


def section(results: dict) -> list[str]:
    """The markdown section for docs/benchmarks.md."""
    r, m = results["load"], results["machine"]
    steps = ", ".join(f"{step} {ms:.1f}" for step, ms in r["server_steps_p50_ms"].items())
    meets = r["errors"] == 0 and r["p50_ms"] <= 150 and r["p99_ms"] <= 1000
    return [
        TITLE, "",
        f"`{results['command']}`: {r['clients']} concurrent clients (one keep-alive connection each) send "
        f"{r['searches']:,} `POST /search` requests in all, cycling over {r['distinct_photos']} street photos of "
        f"the {results['products']}-product demo catalog, with the defaults (detect the garment, k 5), to one "
        f"`python -m numbpie serve` on 127.0.0.1 (uvicorn, one process; FastAPI runs each search in its thread "
        f"pool over the one shared Pipeline). {WARMUP} untimed searches first. Latency is from send to the whole "
        "JSON answer, as the client sees it.", "",
        "| clients | searches | errors | p50 ms | p90 ms | p99 ms | max ms | requests/s |",
        "|---|---|---|---|---|---|---|---|",
        f"| {r['clients']} | {r['searches']:,} | {r['errors']} | {r['p50_ms']:.0f} | {r['p90_ms']:.0f} | "
        f"{r['p99_ms']:.0f} | {r['max_ms']:.0f} | {r['requests_per_s']:.1f} |", "",
        f"Server-side step medians (ms, from each answer's `timings_ms`): {steps}. `embed` includes the wait for "
        "the shared embedder, which runs one forward at a time, so with 8 requests in flight it is about 8 "
        f"forwards. Target: 0 errors, p50 ≤ 150 ms, p99 ≤ 1 s on 2 cores: **{'met' if meets else 'not met'}** "
        "in this run.", "",
        f"Measured {results['date']} on {m['cpu']}, {m['cores']} cores; load average {m['load_average']:.1f} at "
        f"start, {results['load_average_end']:.1f} at end. {results.get('note', '')}".rstrip(), "",
    ]


def splice(markdown: Path, lines: list[str]) -> None:
    """Put the section into `markdown`: in place of an older one, else before 'Speed work', else at the end."""
    text = markdown.read_text() if markdown.exists() else "# Benchmarks\n"
    block = "\n".join(lines).rstrip() + "\n\n"
    if TITLE in text:
        start = text.index(TITLE)
        end = text.find("\n## ", start + len(TITLE))
        text = text[:start] + block + (text[end + 1:] if end >= 0 else "")
    elif "\n## Speed work" in text:
        at = text.index("\n## Speed work") + 1
        text = text[:at] + block + text[at:]
    else:
        text = text.rstrip() + "\n\n" + block
    markdown.write_text(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--searches", type=int, default=2000, help="timed searches in all")
    parser.add_argument("--url", default=None, help="a running server (default: start one on the demo catalog)")
    parser.add_argument("--out", default="docs/benchmarks.md", help="markdown report to write the section into")
    parser.add_argument("--note", default="", help="a sentence about the conditions, printed under the table")
    parser.add_argument("--from-json", default=None, help="re-render the section from a saved http.json; run nothing")
    args = parser.parse_args(argv)
    if args.from_json:
        splice(Path(args.out), section(json.loads(Path(args.from_json).read_text())))
        return 0

    from numbpie.app import demo

    folder = demo.default_folder()
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(running_server(log=ROOT / "runs" / "bench_http_server.log"))
        products = json.loads((folder / "demo.json").read_text())["recipe"]["products"]
        start_machine = machine()
        load = load_test(url, _queries(folder), args.clients, args.searches)
    command = "python -m benchmarks.bench_http" + "".join(
        f" --{k} {v}" for k, v in (("clients", args.clients), ("searches", args.searches)))
    results = {"command": command, "load": load, "machine": start_machine, "products": products,
               "load_average_end": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d"), "note": args.note}
    out = Path(args.out)
    raw = out.parent / out.stem / "http.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(results, indent=1))
    splice(out, section(results))
    print("\n".join(section(results)))
    return 0 if load["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
