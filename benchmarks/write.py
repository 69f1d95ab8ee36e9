"""docs/benchmarks.md from the results of benchmarks.run: headline, tables beside their limits, plots."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import report

__all__ = ["LOADED", "SECTIONS", "headline", "limit_figures", "merge", "rewrite", "runs_of", "write_report"]

SECTIONS = ("limits", "product", "embed", "pipeline", "gan", "search", "flat")  # in the order a run measures them
LOADED = 2.5  # a load average above this on 2 cores: other jobs shared the machine

SPEED_WORK = """## Speed work these figures show

- **One thread policy, in the product.** torch, FAISS (its own OpenMP runtime), the BLAS that
  scans flat indexes and TensorFlow each start a pool as large as the machine. `numbpie.app.threads`
  sizes them together (the usable cores, or `NUMBPIE_THREADS`; TensorFlow one thread, intra- and
  inter-op, since the detector's ops are too short to split), once, where
  `numbpie.app.assemble` puts the models together, so the page, the CLI and the HTTP API all run
  with it; `benchmarks.common.configure_threads` is the same call. Under load, barrier-heavy
  multi-threaded code waits for a descheduled thread, so 1 thread can beat 2; on a quiet machine 2
  should win.
- **Batching.** Batch 1 pays per-layer overheads once per image; indexing embeds in batches
  (`Embedder.batch_size`, 16 by default).
- **bf16 (and channels_last) by default where the CPU has it.** bf16 convolutions run on
  AMX/AVX512-BF16 (see the bf16 matmul peak) with Recall@1 unchanged (README, Quality), so
  `numbpie.embedder.load` picks bf16 on CPUs with AVX512-BF16 or AMX and fp32 elsewhere
  (`--precision fp32` forces it). An index records the precision it was embedded in; queries of
  the other one are used only when a sample of the catalog, embedded again, agrees to a cosine of
  0.999 (`numbpie.embedder.matching`).
- **A frozen copy of the embedder for inference.** `torch.autocast` cast every weight to bf16 and
  oneDNN reordered it on every call, and each batch norm ran on its own: most of a single 128 px
  query's time. `numbpie.embedder.inference_network` folds the batch norms into the convolutions
  (in fp32), casts the weights once, traces and freezes the network and lets oneDNN Graph fuse
  convolutions with their activations and pools; `Embedder.embed` runs that copy (cosine to the
  autocast vectors ≥ 0.999 in bf16, tested in `tests/test_embedder.py`). The embed section's
  `precision` table still compares eager fp32 with autocast bf16 forward passes.
- **HNSW / IVF defaults from the curves.** `numbpie.index.SEARCH_DEFAULTS` sets efSearch=64 for
  HNSW, nprobe=16 for IVF and k_factor_rf=8 for a `Refine(...)` rerank whenever those factory
  strings are used (`python -m numbpie index --factory ...`), and they are saved with the index.
  FAISS's own defaults (efSearch 16, nprobe 1) lose recall on 2048-d vectors.
- **Flat search is a memory scan, done as one.** One query reads the whole matrix once, so its
  floor is size / read bandwidth. FAISS scans a single query on one thread; `Index.search` scans
  flat indexes with one BLAS matrix-vector product over FAISS's storage (batches: one
  matrix-matrix product per block of queries) and leaves IVF/HNSW to FAISS. Past ~10^5
  products, IVF-SQ8 reads a quarter of the bytes of a few percent of the lists.
"""


def _best(rows, key, **match):
    mine = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    return max(mine, key=lambda r: r[key]) if mine else None


def section_command(*sections: str, extra: str = "") -> str:
    """The command that measures only `sections` (what a headline figure says it comes from)."""
    skip = ",".join(s for s in SECTIONS if s not in sections)
    return f"`python -m benchmarks.run --skip {skip}{extra}`"


PRODUCT, COMPARISON = "**Product's path.**", "**Comparison.**"


def headline(results: dict, peak: float | None, bandwidth: float | None) -> list[str]:
    """The figures the issues set targets for, each labelled the product's path or a comparison, with its command."""
    lines = []
    product = results.get("product")
    if product:
        for label, target in (("page path: ", 35), ("page path + edit", 60)):
            totals = [r for r in product["rows"] if r["config"].startswith(label) and r["step"] == "total"]
            if totals:
                r = totals[0]  # the product's defaults come first; the others are before/after comparisons
                before = next((b for b in totals if b["config"].endswith("default pools")), None)
                lines.append(f"{PRODUCT} The page's path ({'detect, edit' if 'edit' in label else 'detect'}, embed, "
                             f"search, look up; `open_pipeline` on demo street photos, "
                             f"{r['config'].rsplit(': ', 1)[1]}): **p50 {r['p50_ms']:.0f} ms**"
                             + (f"; the product before (fp32, every pool at its own default, same run) "
                                f"{before['p50_ms']:.0f} ms" if before else "")
                             + f". Target: ≤ {target} ms on a quiet machine. {section_command('product')}")
    embed = results.get("embed")
    if embed:
        best = _best(embed["throughput"], "images_per_s", input_px=299)
        if best:
            lines.append(f"{COMPARISON} Inception-V3 299 px (`--embedder imagenet`) in fp32, which the product "
                         f"uses only on CPUs without bf16: **{best['images_per_s']:.1f} images/s** "
                         f"(batch {best['batch']}, {best['threads']} threads), {best['gflops']:.0f} GFLOP/s"
                         + (f" = **{best['gflops'] / peak:.0%} of the measured fp32 matmul peak** "
                            f"({peak:.0f} GFLOP/s)" if peak else "")
                         + f". Target: ≥ 12 images/s, ~75% of peak. {section_command('limits', 'embed')}")
        bf16 = next((r for r in embed["precision"] if r["input_px"] == 299 and r["variant"] == "bf16"), None)
        if bf16:
            lines.append(f"{COMPARISON} bf16 autocast on the eager network (bf16 is the product's precision on "
                         f"this CPU; it runs a frozen copy) against fp32 at 299 px, forward pass on the same batch: "
                         f"**×{bf16['speedup']:.2f}**, cosine to the fp32 vectors "
                         f"min {bf16['cosine_min']:.4f} / mean {bf16['cosine_mean']:.4f}. Recall@1 change with "
                         f"the bundled embedder: see the README's Quality table. {section_command('limits', 'embed')}")
    search = results.get("search")
    if search:
        n_max = max(r["n"] for r in search["rows"])
        ok = [r for r in search["rows"] if r["n"] == n_max and r["data"] == "clustered"
              and r["recall_at_5"] >= 0.95]
        if ok:
            r = min(ok, key=lambda r: r["p50_ms"])
            lines.append(f"{COMPARISON} Search over {n_max:,} clustered vectors on raw FAISS indexes built from the "
                         f"factory strings `numbpie index --factory` takes (`Index.search` hands such indexes to "
                         f"FAISS): fastest with recall@5 ≥ 0.95 is `{r['factory']}` ({r['param']}): **p50 "
                         f"{r['p50_ms']:.2f} ms, recall@5 {r['recall_at_5']:.3f}, {r['bytes_per_vector']:.0f} "
                         f"bytes/vector**. Target: ≤ 5 ms. "
                         f"{section_command('search', extra=f' --search-sizes {n_max}')}")
    flat = results.get("flat")
    if flat:
        r = flat["rows"][0]  # numbpie's Index.search: the product's path
        ratio = r.get("of_bandwidth") or (r["gb_per_s"] / bandwidth if bandwidth else None)
        faiss = [c for c in flat["rows"][1:] if "FAISS" in c["engine"] and c["threads"] == r["threads"]]
        lines.append(f"{PRODUCT} Flat search, one query over 139,709 × 2048 through `Index.search` (the default "
                     f"`IDMap2,Flat` index, {r['threads']} threads): **p50 {r['p50_ms']:.1f} ms**, "
                     f"{r['gb_per_s']:.1f} GB/s" + (f" = **{ratio:.0%} of the read bandwidth** measured just "
                                                    "before it" if ratio else "")
                     + (f"; comparison: FAISS searching the same index (the product's path before) "
                        f"{faiss[0]['p50_ms']:.0f} ms" if faiss else "")
                     + f". Target: ≤ 40 ms, ≥ 80% of the bandwidth. {section_command('flat')}")
    return lines


def _peak_load(run: dict) -> float:
    return max(load for load in (run.get("load_average"), run.get("load_average_end")) if load is not None) \
        if run.get("load_average") is not None else 0.0


def _run_line(run: dict) -> str:
    """One run in the report's list: its command, when, its load and the sections it supplies."""
    env = "".join(f"{key}={value} " for key, value in run.get("env", {}).items())
    load = (f"load average {run['load_average']:.1f} at start, {run['load_average_end']:.1f} at end"
            if run.get("load_average") is not None else "load not recorded")
    when = f"{run['date']}, " if run.get("date") else ""
    return (f"`{env}python -m benchmarks.run {' '.join(run['argv'])}` ({when}{load}"
            f"{', quick' if run.get('quick') else ''}): {', '.join(run['sections'])}")


def write_report(results: dict, out: Path, peak: float | None, bandwidth: float | None) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    figures = out.parent / out.stem
    figures.mkdir(exist_ok=True)
    (figures / "results.json").write_text(json.dumps(results, indent=1, default=str))
    m = results["machine"]
    runs = runs_of(results)
    command = "python -m benchmarks.run " + " ".join(results["argv"])
    under_load = [run for run in runs if _peak_load(run) > LOADED]
    if len(runs) == 1:
        origin = ("Re-rendered from saved results." if results["argv"][:1] == ["--from-json"] else
                  "Every figure below is from that one run on this machine; rerun the command to reproduce.")
        md = ["# Benchmarks", "",
              f"Written by `{command.strip()}` (raw figures: `{figures.name}/results.json`). "
              f"{'**Quick run: tiny sizes, few repeats.** ' if results['quick'] else ''}{origin}", ""]
    else:
        md = ["# Benchmarks", "",
              f"Each section is from the newest of these runs that measured it (raw figures: "
              f"`{figures.name}/results.json`; a run of some sections merges them into the saved results, "
              f"`--no-merge` starts afresh):", ""] + [f"- {_run_line(run)}" for run in runs] + [""]
    md += [f"Machine: {m['cpu']}, {m['cores']} cores ({m['isa']}); torch {m['torch']}, faiss {m['faiss']}, "
           f"numpy {m['numpy']}, Python {m['python']}. One pool of 2 threads for torch, FAISS and TensorFlow "
           f"(`benchmarks.common.configure_threads`)."
           + (f" Load average at start {m['load_average']:.1f}, at end {m['load_average_end']:.1f}."
              if len(runs) == 1 else ""), ""]
    if under_load:
        sections = ", ".join(s for run in under_load for s in run["sections"])
        md += [f"> **Taken under load: {sections}.** Other jobs shared these 2 cores (load average above "
               f"{LOADED}), so those latencies are pessimistic and noisy, and multi-threaded figures suffer "
               "most. Rerun them on a quiet machine before quoting them.", ""]
    md += ["## Headline", ""] + [f"- {line}" for line in headline(results, peak, bandwidth)] + [""]

    if "limits" in results:
        md += ["## The limits, measured in the same run", "",
               "Best of several runs of an n × n × n matmul (2n³ FLOP) and of a sum over an array far "
               "larger than the caches (this VM reports a 480 MiB L3, so 10^4 × 2048 vectors fit in it and "
               "larger catalogs do not).", "",
               report.table(results["limits"]["matmul"]), report.table(results["limits"]["bandwidth"])]

    if "product" in results:
        md += ["## The page's path, as a user runs it", "",
               "`benchmarks.bench_pipeline.product_rows`: `numbpie.app.assemble.open_pipeline` over the demo "
               f"catalog ({results['product'].get('demo_products', 400)} products: `NUMBPIE_DEMO_PRODUCTS`, 400 "
               "by default) with the bundled models (detector, embedder, editor, tagger), then `Pipeline.search` "
               "on its street photos, as the page calls it: first with the product's defaults (thread policy "
               "`numbpie.app.threads`, precision `auto`), then forced to fp32, then — in a fresh process, "
               "since TensorFlow sizes its pools once — fp32 with every framework's pools left at their own "
               "defaults (the product before the thread policy and bf16, though with the frozen embedder of "
               "`numbpie.embedder.inference_network`).", "",
               report.table(results["product"]["rows"], ["config", "step", "p50_ms", "p95_ms"]), ""]

    if "pipeline" in results:
        p = results["pipeline"]
        md += ["## Query latency per step (Pipeline.search on a street photo)", "",
               "Through `numbpie.app.pipeline.Pipeline` on a synthetic demo-like catalog "
               "(`numbpie.synth.write_dataset`, indexed with `numbpie.app.indexer.index_catalog`, Flat index). "
               f"The default embedder is `{p.get('default_embedder', 'random')}`; the 299 px rows use "
               "`build_inception()` with random weights, which costs the same FLOPs as ImageNet weights. The detector is the SSD exported with random "
               "weights (speed only); the edit uses random-weight StarGAN + CycleGAN at fashion_gan sizes.",
               ""]
        if p.get("detector_note"):
            md += [f"Note: {p['detector_note']}", ""]
        md += [report.table(p["rows"], ["config", "step", "p50_ms", "p95_ms", "images_per_s"]),
               f"![per-step latency]({figures.name}/pipeline.png)", ""]
        report.pipeline_plot([r for r in p["rows"] if r.get("p50_ms") is not None and r["step"] != "total"],
                             figures / "pipeline.png")

    if "embed" in results:
        e = results["embed"]
        md += ["## Embedder: indexing throughput vs batch size and threads", "",
               "FLOPs per image counted with `torch.utils.flop_counter.FlopCounterMode` (2 × multiply-adds): "
               + ", ".join(f"{size} px: {flops / 1e9:.2f} GFLOP" for size, flops in e["flops"].items())
               + ". Images/s are through `Embedder.embed` on PIL product shots (letterbox, normalise, "
               "forward, L2), i.e. what indexing does per image; `of_fp32_peak` divides the achieved "
               "GFLOP/s by the torch fp32 matmul peak on 2 threads above.", "",
               report.table(e["throughput"]), f"![throughput]({figures.name}/embed.png)", "",
               "### bf16 and channels_last", "",
               "Same batch, forward pass only; `bf16` is `torch.autocast('cpu', torch.bfloat16)` on a "
               "channels_last model (oneDNN uses AVX512-BF16/AMX). Cosine is between each image's fp32 and "
               "bf16 embedding. The change in Recall@1 is measured with `numbpie eval retrieval --precision "
               "bf16` (README, Quality).", "",
               report.table(e["precision"])]
        report.embed_plot(e["throughput"], figures / "embed.png")

    if "gan" in results:
        md += ["## GAN edit latency per editor", "",
               "`gan.Editor.apply` (resize in, generator, resize out) for the bundled editors and with random "
               "weights at the fashion_gan sizes (StarGAN conv_dim 64 / 6 blocks at 128 px over our 13-value "
               "shape label, CycleGAN ResNet-9 at 256 px, pix2pix U-Net-8 at 256 px); `of_peak` is against "
               "the fp32 matmul peak.", "",
               report.table(results["gan"]["rows"])]

    if "search" in results:
        rows = results["search"]["rows"]
        md += ["## Search: latency, recall@5 against exact search, memory per vector", "",
               "`benchmarks.bench_search`: one query at a time (as the app searches), 2048-d unit vectors, "
               "inner product. `clustered`: rows near a 64-d subspace in 1,000 clusters plus isotropic noise "
               "(CNN embeddings of a catalog have this kind of low intrinsic dimension, so ANN recall "
               "means something); `random`: isotropic Gaussian, the worst case. Ground truth is exact "
               "search, computed chunk by chunk. Bytes/vector is the serialised index size over n. "
               "IVF-PQ rows search the PQ codes alone; `+ SQ8 rerank` re-scores 8 × k candidates "
               "with 8-bit scalar-quantised vectors (`Refine(SQ8)`, k_factor_rf=8).", "",
               report.table(rows, ["data", "n", "index", "factory", "param", "p50_ms", "p95_ms",
                                   "recall_at_5", "bytes_per_vector", "build_s"]),
               f"![recall vs latency]({figures.name}/search.png)", ""]
        report.search_plot(rows, figures / "search.png")

    if "flat" in results:
        rows = results["flat"]["rows"]
        for r in rows:
            if r.get("of_bandwidth") is None:  # results from before each row measured its own
                r["of_bandwidth"] = r["gb_per_s"] / bandwidth if bandwidth else None
        md += ["## Flat search over 139,709 × 2048", "",
               "One query; the scan reads 139,709 × 2048 × 4 B = 1.14 GB, so it is bounded by memory "
               "read bandwidth. The first row is the product's path: `numbpie.index.Index.search` on the "
               "index `numbpie index` builds by default, which scans flat indexes with one numpy "
               "matrix-vector product over FAISS's own storage. The other rows are comparisons on the same "
               "vectors. `read_gb_per_s` is measured just before each row with the same threads "
               "(`benchmarks.limits.read_bandwidth`); `of_bandwidth` is the row's GB/s over it.", "",
               report.table(rows)]

    http = figures / "http.json"
    if http.exists():  # written by benchmarks.bench_http, which runs apart from benchmarks.run
        from benchmarks import bench_http

        md += bench_http.section(json.loads(http.read_text()))
    page = figures / "page.json"
    if page.exists():  # written by tests/test_browser.py, which drives the real page in Chromium
        from benchmarks import page as page_figures

        md += page_figures.section(json.loads(page.read_text()))
    md += [SPEED_WORK, "## Notes", ""] + [f"- {n}" for n in results.get("notes", [])] + [
        "- HNSW is not built at 10^6 × 2048 in this run: its build on 2 cores takes far longer than the "
        "rest of the benchmark (see build_s at 10^5 and scale by ~10×).",
        "- Search figures use raw FAISS indexes from the same factory strings numbpie's `Index` wraps "
        "(in `IndexIDMap2`, which adds an id lookup per result and nothing measurable here).",
        "- `numbpie.index.Index` collects the vectors of an IVF/PQ factory in an exact index and trains "
        "the factory on all of them when `index_catalog` finishes, as these benchmarks do.",
        "- `seconds` per section is in results.json.", ""]
    out.write_text("\n".join(md))


def runs_of(results: dict) -> list[dict]:
    """The runs of benchmarks.run behind `results`, newest first: command, sections, load, notes.

    Results written before runs were listed count as one run: their command and every section they hold.
    """
    if "runs" in results:
        return results["runs"]
    m = results.get("machine", {})
    return [{"argv": results.get("argv", []), "quick": results.get("quick", False),
             "sections": [s for s in SECTIONS if s in results], "load_average": m.get("load_average"),
             "load_average_end": m.get("load_average_end"), "notes": results.get("notes", [])}]


def _search_key(row: dict) -> tuple:
    return row["data"], row["n"], row["index"], row["factory"], row["param"]


def merge(parts: list[dict]) -> dict:
    """One results dict from several, earlier parts winning: each section from the first part that has it.

    Search rows add up across parts (one run may measure only 10^6), the first part's row winning
    where two measured the same index. `runs` lists, newest first, the runs whose figures were
    kept and the sections each supplies; a run none of whose figures were kept is dropped.
    """
    results = {key: value for key, value in parts[0].items() if key not in SECTIONS}
    results["machine"] = dict(parts[0]["machine"])
    supplied: list[set] = [set() for _ in parts]  # sections each part supplies
    for name in SECTIONS:
        owner = next((i for i, part in enumerate(parts) if name in part), None)
        if owner is not None:
            results[name] = parts[owner][name]
            supplied[owner].add(name)
    if sum("search" in part for part in parts) > 1:
        seen, rows = set(), []
        for i, part in enumerate(parts):
            for row in part.get("search", {}).get("rows", []):
                if _search_key(row) not in seen:
                    seen.add(_search_key(row))
                    rows.append(row)
                    supplied[i].add("search")
        results["search"] = {**results["search"], "rows": rows}
    runs = []
    for part, sections in zip(parts, supplied, strict=True):
        for run in runs_of(part):
            kept = [s for s in run["sections"] if s in sections]
            if kept:
                runs.append({**run, "sections": kept})
    results["runs"] = runs
    results["notes"] = [note for run in runs for note in run.get("notes", [])]
    results["seconds"] = {}
    for part, sections in zip(parts, supplied, strict=True):
        for name in sections:
            if name in part.get("seconds", {}):
                results["seconds"].setdefault(name, part["seconds"][name])
    results["quick"] = any(run.get("quick") for run in runs)
    return results


def limit_figures(results: dict, threads: int = 2) -> tuple[float | None, float | None]:
    """The fp32 matmul peak (GFLOP/s, torch on `threads`) and the read bandwidth (GB/s) from the limits section."""
    if "limits" not in results:
        return None, None
    from benchmarks.limits import best_gflops

    return (best_gflops(results["limits"]["matmul"], "float32", threads),
            max(r["gb_per_s"] for r in results["limits"]["bandwidth"]))


def rewrite(results_json: list[Path], out: Path) -> None:
    """Write the report again from saved results.json files (no measuring)."""
    results = merge([json.loads(Path(p).read_text()) for p in results_json])
    results["argv"] = ["--from-json", ",".join(str(p) for p in results_json)]
    write_report(results, out, *limit_figures(results))
