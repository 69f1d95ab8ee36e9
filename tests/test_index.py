import faiss
import numpy as np
import pytest

from numbpie.index import Index, IndexMismatchError, normalize

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
