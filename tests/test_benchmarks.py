"""Benchmark helpers: pure functions against brute force; no timing is asserted."""

import faiss
import numpy as np
import pytest

from benchmarks import report
from benchmarks.bench_search import VectorSource, exact_search, index_bytes, recall_at_k
from benchmarks.common import percentiles
from numbpie.index import Index


@pytest.mark.parametrize("kind", ["clustered", "random"])
def test_vector_source_is_deterministic_unit_rows(kind):
    source = VectorSource(kind, dim=32, clusters=10, latent=4)
    rows = source.rows(5, 20)
    assert rows.shape == (20, 32) and rows.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(rows, VectorSource(kind, dim=32, clusters=10, latent=4).rows(5, 20))


def test_exact_search_matches_brute_force_across_chunks(monkeypatch):
    source = VectorSource(dim=16, clusters=5, latent=4)
    monkeypatch.setattr(VectorSource, "chunks", lambda self, n, chunk=70: (
        (s, self.rows(s, min(chunk, n - s))) for s in range(0, n, chunk)))
    xb = np.concatenate([rows for _, rows in source.chunks(300)])
    xq = source.queries(7)
    expected = np.argsort(-(xq @ xb.T), axis=1)[:, :5]
    np.testing.assert_array_equal(exact_search(source, 300, xq, 5), expected)


def test_recall_at_k():
    gt = np.array([[1, 2, 3], [4, 5, 6]])
    assert recall_at_k(gt, gt, 3) == 1.0
    assert recall_at_k(np.array([[3, 9, 9], [7, 8, 9]]), gt, 3) == pytest.approx(1 / 6)


def test_index_bytes_counts_the_serialised_size():
    index = faiss.IndexFlatIP(8)
    index.add(np.ones((10, 8), np.float32))
    assert index_bytes(index) == len(faiss.serialize_index(index))


def test_percentiles_in_ms():
    p = percentiles([0.001] * 19 + [0.1])
    assert p["p50_ms"] == pytest.approx(1.0)


def test_table_formats_rows():
    text = report.table([{"a": 1, "b": 0.99912, "c": None}])
    assert "| a | b | c |" in text and "0.99912" in text


@pytest.mark.parametrize("factory, check", [
    ("HNSW32,Flat", lambda i: i.hnsw.efSearch == 64),
    ("IVF8,Flat", lambda i: i.nprobe == 16),
])
def test_index_search_defaults_survive_save_and_load(tmp_path, factory, check):
    index = Index(16, {"name": "test"}, factory)
    index.add(np.random.default_rng(0).random((400, 16), np.float32), np.arange(400))
    assert index.finish() is None
    index.save(tmp_path)
    loaded = Index.load(tmp_path)
    assert check(faiss.downcast_index(loaded._index.index))


def test_merge_keeps_sections_of_the_first_run_and_adds_up_search_rows():
    from benchmarks.write import merge

    def run(rows, **extra):
        return {"machine": {"load_average": 1.0, "load_average_end": 1.0}, "argv": ["x"],
                "search": {"rows": rows}, **extra}

    def row(n, param, p50):
        return {"data": "clustered", "n": n, "index": "IVF-SQ8", "factory": "IVF1024,SQ8", "param": param,
                "p50_ms": p50}

    new = run([row(10**6, "nprobe=4", 1.0)], gan={"rows": ["new"]})
    old = run([row(10**6, "nprobe=4", 9.0), row(10**4, "nprobe=4", 0.1)], gan={"rows": ["old"]}, flat={"rows": []})
    merged = merge([new, old])
    assert merged["gan"] == {"rows": ["new"]} and "flat" in merged
    assert [(r["n"], r["p50_ms"]) for r in merged["search"]["rows"]] == [(10**6, 1.0), (10**4, 0.1)]


def test_the_headline_quotes_the_products_own_paths_not_the_fastest_comparison():
    from benchmarks.write import headline

    flat = [{"engine": "numbpie Index.search (IDMap2,Flat): the product's path", "threads": 2, "p50_ms": 20.0,
             "gb_per_s": 57.2, "of_bandwidth": 0.8},
            {"engine": "comparison: numpy xb @ q", "threads": 2, "p50_ms": 10.0, "gb_per_s": 114.4, "of_bandwidth": 1.6}]
    label = "bundled 128 px bf16, thread policy 2"
    product = [{"config": f"page path: {label}", "step": "total", "p50_ms": 30.0},
               {"config": f"page path + edit (sleeve_length=long): {label}", "step": "total", "p50_ms": 55.0},
               {"config": "page path: bundled 128 px fp32, default pools", "step": "total", "p50_ms": 5.0}]
    lines = headline({"flat": {"rows": flat}, "product": {"rows": product}}, None, None)
    assert "p50 30 ms" in lines[0] and label in lines[0]
    assert "p50 55 ms" in lines[1] and label in lines[1]
    assert "p50 20.0 ms" in lines[2] and "80% of the read bandwidth" in lines[2]
    assert "own default, same run) 5 ms" in lines[0]  # the product before, as a comparison


def test_every_headline_figure_says_whose_path_it_is_and_its_command():
    from benchmarks.write import headline

    results = {
        "product": {"rows": [{"config": "page path: bundled 128 px bf16, thread policy 2", "step": "total",
                              "p50_ms": 30.0}]},
        "embed": {"throughput": [{"input_px": 299, "batch": 16, "threads": 2, "images_per_s": 15.0, "gflops": 170.0}],
                  "precision": [{"input_px": 299, "variant": "bf16", "speedup": 3.0, "cosine_min": 1.0,
                                 "cosine_mean": 1.0}]},
        "search": {"rows": [{"data": "clustered", "n": 10**6, "index": "IVF-SQ8", "factory": "IVF1024,SQ8",
                             "param": "nprobe=1", "p50_ms": 0.5, "recall_at_5": 0.97, "bytes_per_vector": 2064}]},
        "flat": {"rows": [{"engine": "numbpie Index.search", "threads": 2, "p50_ms": 20.0, "gb_per_s": 57.2,
                           "of_bandwidth": 0.8}]},
    }
    lines = headline(results, 200.0, 75.0)
    assert len(lines) == 5
    for line in lines:
        assert line.startswith(("**Product's path.**", "**Comparison.**")), line
        assert "`python -m benchmarks.run --skip " in line, line
    assert [line.startswith("**Product's path.**") for line in lines] == [True, False, False, False, True]


def test_a_run_of_some_sections_merges_them_into_the_saved_results(tmp_path, monkeypatch):
    import json

    from benchmarks import common, run

    label = "bundled 128 px bf16, thread policy 2"
    earlier = {"machine": {**common.machine(), "load_average_end": 1.0}, "quick": False,
               "argv": ["--skip", "limits,embed,pipeline,gan,search"],
               "product": {"rows": [{"config": f"page path: {label}", "step": "total", "p50_ms": 30.0,
                                     "p95_ms": 40.0}], "demo_products": 100},
               "flat": {"rows": [{"engine": "numbpie Index.search", "threads": 2, "p50_ms": 20.0,
                                  "gb_per_s": 57.2, "of_bandwidth": 0.8}]},
               "seconds": {"product": 50.0, "flat": 40.0}, "notes": ["earlier note"]}
    out = tmp_path / "benchmarks.md"
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "results.json").write_text(json.dumps(earlier))
    monkeypatch.setattr(common, "configure_threads", lambda threads: None)
    gan_rows = iter([[{"editor": name, "p50_ms": 9.0}] for name in ("first", "second", "third")])
    monkeypatch.setattr(run, "run_gan", lambda quick, peak: {"rows": next(gan_rows)})
    only_gan = ["--skip", ",".join(s for s in run.SECTIONS if s != "gan"), "--out", str(out)]

    assert run.main(only_gan) == 0
    saved = json.loads((tmp_path / "benchmarks" / "results.json").read_text())
    assert saved["product"] == earlier["product"] and saved["flat"] == earlier["flat"]
    assert saved["gan"] == {"rows": [{"editor": "first", "p50_ms": 9.0}]}
    assert [(r["argv"], r["sections"]) for r in saved["runs"]] == [(only_gan, ["gan"]),
                                                                   (earlier["argv"], ["product", "flat"])]
    assert saved["notes"] == ["earlier note"] and set(saved["seconds"]) == {"product", "flat", "gan"}
    report = out.read_text()
    for heading in ("## The page's path, as a user runs it", "## Flat search over", "## GAN edit latency"):
        assert heading in report
    assert "p50 30 ms" in report and "p50 20.0 ms" in report  # the earlier run's headline figures stay
    assert "--skip limits,embed,pipeline,gan,search`" in report and f"--skip {only_gan[1]} --out" in report

    assert run.main(only_gan) == 0  # the newest run of a section wins; a run left with none is dropped
    saved = json.loads((tmp_path / "benchmarks" / "results.json").read_text())
    assert saved["gan"]["rows"][0]["editor"] == "second"
    assert [r["sections"] for r in saved["runs"]] == [["gan"], ["product", "flat"]]

    assert run.main(only_gan + ["--no-merge"]) == 0  # afresh: this run's sections only
    saved = json.loads((tmp_path / "benchmarks" / "results.json").read_text())
    assert saved["gan"]["rows"][0]["editor"] == "third" and "product" not in saved and len(saved["runs"]) == 1
