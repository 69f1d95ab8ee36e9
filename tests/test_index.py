import json

import faiss
import numpy as np
import pytest

from numbpie.errors import OptionError
from numbpie.index import Index, IndexMismatchError, normalize, top_k

EMBEDDER = {"name": "test", "sha256": "abc"}


def brute_force(xb, ids, xq, k):
    sims = normalize(xq) @ normalize(xb).T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, 1), ids[order]


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    xb = rng.normal(size=(500, 32)).astype(np.float32) * rng.uniform(0.1, 10, (500, 1))
    ids = rng.permutation(10_000)[:500].astype(np.int64)
    xq = rng.normal(size=(20, 32)).astype(np.float32)
    return xb, ids, xq


def test_normalize_gives_unit_rows_and_keeps_zero_rows():
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    out = normalize(x)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_allclose(out, [[0.6, 0.8], [0, 0]])


def test_flat_search_equals_brute_force(data):
    xb, ids, xq = data
    index = Index(32, EMBEDDER)
    index.add(xb, ids)
    D, I = index.search(xq, 5)
    D_ref, I_ref = brute_force(xb, ids, xq, 5)
    np.testing.assert_array_equal(I, I_ref)
    np.testing.assert_allclose(D, D_ref, atol=1e-5)
    assert len(index) == 500 and sorted(index.ids()) == sorted(ids)


@pytest.mark.parametrize("k", [1, 5, 500, 900])
def test_one_query_on_a_flat_index_is_exact_numpy_search(data, k):
    """The app's path: one query at a time, answered by a matrix-vector product, not by FAISS."""
    xb, ids, xq = data
    index = Index(32, EMBEDDER)
    index.add(xb, ids)
    assert index._flat_storage() is not None  # searched with numpy, not FAISS
    for q in xq:
        D, I = index.search(q, k)
        D_ref, I_ref = brute_force(xb, ids, q[None], min(k, 500))
        np.testing.assert_array_equal(I, I_ref)
        np.testing.assert_allclose(D, D_ref, atol=1e-5)
        assert D.dtype == np.float32 and I.dtype == np.int64


def test_flat_search_stays_exact_as_the_index_grows_shrinks_and_reloads(tmp_path, data):
    xb, ids, xq = data
    index = Index(32, EMBEDDER)
    index.add(xb[:7], ids[:7])
    index.search(xq[:1], 3)
    for start in range(7, 500, 97):  # FAISS reallocates its buffer as it grows
        index.add(xb[start:start + 97], ids[start:start + 97])
        D, I = index.search(xq[:1], 5)
        D_ref, I_ref = brute_force(xb[:start + 97], ids[:start + 97], xq[:1], 5)
        np.testing.assert_array_equal(I, I_ref)
        np.testing.assert_allclose(D, D_ref, atol=1e-5)
    index.save(tmp_path)
    loaded = Index.load(tmp_path, keep_ids=ids[100:])
    np.testing.assert_array_equal(loaded.search(xq, 5)[1], brute_force(xb[100:], ids[100:], xq, 5)[1])


def test_batched_flat_search_matches_faiss_and_blocks_agree(data, monkeypatch):
    xb, ids, xq = data
    index = Index(32, EMBEDDER)
    index.add(xb, ids)
    D_faiss, I_faiss = index._index.search(normalize(xq), 5)
    monkeypatch.setattr("numbpie.index.SCORE_BLOCK", 500 * 3)  # 3 queries per block
    D, I = index.search(xq, 5)
    np.testing.assert_array_equal(I, I_faiss)
    np.testing.assert_allclose(D, D_faiss, atol=1e-5)


def test_top_k_orders_best_first_and_ties_by_position():
    scores = np.array([[0.1, 0.9, 0.5, 0.9, 0.2], [3.0, 2.0, 1.0, 0.0, -1.0]], np.float32)
    values, positions = top_k(scores, 3)
    np.testing.assert_array_equal(positions, [[1, 3, 2], [0, 1, 2]])
    np.testing.assert_allclose(values, [[0.9, 0.9, 0.5], [3.0, 2.0, 1.0]])
    assert top_k(scores, 5)[1].tolist()[1] == [0, 1, 2, 3, 4]


def test_the_manifest_records_the_embedders_precision(tmp_path, data):
    xb, ids, _ = data
    index = Index(32, EMBEDDER, precision="bf16")
    index.add(xb, ids)
    index.save(tmp_path)
    assert Index.read_manifest(tmp_path)["precision"] == "bf16"
    assert Index.load(tmp_path).precision == "bf16"
    manifest = Index.read_manifest(tmp_path)  # written before precisions were recorded: fp32
    del manifest["precision"]
    (tmp_path / "index.json").write_text(json.dumps(manifest))
    assert Index.load(tmp_path).precision == "fp32"
    with pytest.raises(OptionError, match="fp32, bf16"):
        Index(32, EMBEDDER, precision="fp16")


def test_a_stored_vector_finds_itself_with_score_one(data):
    xb, ids, _ = data
    index = Index(32, EMBEDDER)
    index.add(xb, ids)
    D, I = index.search(xb[:10], 1)
    np.testing.assert_array_equal(I[:, 0], ids[:10])
    np.testing.assert_allclose(D[:, 0], 1.0, atol=1e-5)


def test_hnsw_factory_has_high_recall(data):
    xb, ids, xq = data
    index = Index(32, EMBEDDER, factory="HNSW32")
    index.add(xb, ids)
    assert index._flat_storage() is None  # approximate indexes stay with FAISS
    _, I = index.search(xq, 5)
    _, I_ref = brute_force(xb, ids, xq, 5)
    recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(I, I_ref, strict=True)])
    assert recall >= 0.9


def test_save_load_roundtrip_and_no_temp_files(tmp_path, data):
    xb, ids, xq = data
    index = Index(32, EMBEDDER)
    index.add(xb, ids)
    index.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.faiss", "index.json"]
    loaded = Index.load(tmp_path, embedder=EMBEDDER, count=500)
    np.testing.assert_array_equal(loaded.search(xq, 5)[1], index.search(xq, 5)[1])
    assert Index.read_manifest(tmp_path)["count"] == 500


def test_load_refuses_mismatches(tmp_path, data):
    xb, ids, _ = data
    index = Index(32, EMBEDDER)
    index.add(xb, ids)
    index.save(tmp_path)
    with pytest.raises(IndexMismatchError, match="built with embedder"):
        Index.load(tmp_path, embedder={"name": "other", "sha256": "x"})
    with pytest.raises(IndexMismatchError, match="catalog has 501 products"):
        Index.load(tmp_path, count=501)
    with pytest.raises(IndexMismatchError, match="No index"):
        Index.load(tmp_path / "nowhere")
    (tmp_path / "index.faiss").write_bytes(b"garbage")
    with pytest.raises(IndexMismatchError, match="unreadable"):
        Index.load(tmp_path)


def test_wrong_shapes_and_bad_factory_are_clear_errors(data):
    xb, ids, _ = data
    index = Index(32, EMBEDDER)
    with pytest.raises(ValueError, match="dimension"):
        index.add(xb[:, :16], ids)
    with pytest.raises(ValueError, match="factory"):
        Index(32, EMBEDDER, factory="NotAnIndex")


def test_an_ivf_index_trains_on_everything_once_finished(tmp_path):
    rng = np.random.default_rng(4)
    vectors = rng.normal(size=(600, 32)).astype(np.float32)
    index = Index(32, EMBEDDER, factory="IVF16,Flat")
    assert index.staged
    for start in range(0, 600, 100):  # chunks, as the indexer adds them
        index.add(vectors[start:start + 100], np.arange(start, start + 100))
    exact = index.search(vectors[:20], k=5)[1]  # staged: exact search meanwhile
    index.save(tmp_path)
    reloaded = Index.load(tmp_path)
    assert reloaded.staged and len(reloaded) == 600
    assert reloaded.finish() is None and not reloaded.staged
    ivf = faiss.extract_index_ivf(faiss.downcast_index(reloaded._index.index))
    assert ivf.ntotal == 600 and ivf.nlist == 16
    sizes = [ivf.invlists.list_size(n) for n in range(16)]
    assert max(sizes) < 200  # centroids from all 600 vectors spread them out
    assert (reloaded.search(vectors[:20], k=5)[1][:, 0] == exact[:, 0]).all()
    reloaded.save(tmp_path)
    assert not Index.load(tmp_path).staged


def test_too_few_vectors_to_train_keeps_exact_search():
    index = Index(32, EMBEDDER, factory="IVF64,Flat")
    index.add(np.random.default_rng(5).normal(size=(10, 32)).astype(np.float32), np.arange(10))
    message = index.finish()
    assert "too few to train IVF64,Flat" in message and index.staged
    assert index.search(np.eye(32, dtype=np.float32)[:1], k=3)[1].shape == (1, 3)


@pytest.mark.parametrize("factory", ["IDMap2,Flat", "HNSW8,Flat", "IVF8,Flat"])
def test_vectors_gives_each_ids_stored_unit_vector(tmp_path, data, factory):
    xb, ids, _ = data
    index = Index(32, EMBEDDER, factory)
    index.add(xb, ids)
    assert index.finish() is None
    index.save(tmp_path)
    loaded = Index.load(tmp_path)
    picked = ids[[3, 0, 499]]
    np.testing.assert_allclose(loaded.vectors(picked), normalize(xb[[3, 0, 499]]), atol=1e-6)
    with pytest.raises(KeyError, match="not in the index"):
        loaded.vectors([10_001])
