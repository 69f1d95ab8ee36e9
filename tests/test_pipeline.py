import dataclasses
import io
import time

import numpy as np
import pytest
from PIL import Image

from detector import FLOOR, Detection
from numbpie.app.indexer import index_catalog, open_catalog
from numbpie.app.pipeline import Pipeline, Result, manual_crop
from numbpie.catalog import Catalog, import_folder
from numbpie.index import Index
from numbpie.errors import EditError, OptionError, TagError, UserError


@pytest.fixture
def pipeline(tmp_path, image_tree, random_embedder):
    folder = tmp_path / "c"
    import_folder(open_catalog(folder), image_tree)
    index_catalog(folder, random_embedder)
    return Pipeline.open(folder, embedder=random_embedder)


def test_search_from_bytes_path_and_image_agree(pipeline, image_tree):
    path = image_tree / "dress" / "item_04.jpg"
    by_path = pipeline.search(path)
    by_bytes = pipeline.search(path.read_bytes())
    by_image = pipeline.search(Image.open(path))
    ids = [m.product.id for m in by_path.matches]
    assert len(ids) == 5 and by_path.matches[0].product.image == str(path.absolute())
    assert [m.product.id for m in by_bytes.matches] == ids == [m.product.id for m in by_image.matches]
    assert by_path.matches[0].score == pytest.approx(1.0, abs=1e-4)


def test_timings_cover_every_step(pipeline, image_tree):
    result = pipeline.search(image_tree / "top" / "item_01.jpg")
    assert list(result.timings) == ["load", "embed", "search", "lookup"]
    assert all(t > 0 for t in result.timings.values())


class ScoredDetector:
    """Three garments scored 0.9, 0.5 and 0.2 (times `factor`), kept from the threshold (0.4 when None); takes 20 ms."""

    def __init__(self, factor: float = 1.0):
        self.thresholds, self.factor = [], factor

    def detect(self, image, threshold=None):
        self.thresholds.append(threshold)
        time.sleep(0.02)
        w, h = image.size
        found = [Detection((0, 0, w / 2, h / 2), 0.9 * self.factor, "top"),
                 Detection((w / 2, 0, w, h / 2), 0.5 * self.factor, "dress"),
                 Detection((0, h / 2, w, h), 0.2 * self.factor, "top")]
        return [d for d in found if d.score >= (0.4 if threshold is None else threshold)]


class MeanColourEmbedder:
    """A stand-in embedder: the unit vector of an image's mean colour, in 8 dimensions."""

    dim = 8

    def __init__(self):
        self.seen = []

    def embed(self, images):
        self.seen += [image.size for image in images]
        rows = [np.r_[np.asarray(image, np.float32).mean(axis=(0, 1)), np.ones(5)] for image in images]
        return np.array(rows, np.float32) / np.linalg.norm(rows, axis=1, keepdims=True)


def test_a_detected_search_times_the_detector_too(tmp_path):
    pipeline, _ = synthetic_pipeline(tmp_path, ["top"] * 6)
    pipeline.detector = ScoredDetector()
    start = time.perf_counter()
    result = pipeline.search(Image.new("RGB", (60, 80), (200, 30, 30)))
    wall = time.perf_counter() - start
    assert list(result.timings) == ["load", "detect", "embed", "search", "lookup"]
    assert all(t > 0 for t in result.timings.values())
    assert 0.02 <= result.timings["detect"] and sum(result.timings.values()) <= wall


def test_the_detector_threshold_reaches_the_detector(tmp_path):
    pipeline, _ = synthetic_pipeline(tmp_path, ["top"] * 6)
    pipeline.detector = ScoredDetector()
    image = Image.new("RGB", (60, 80), (200, 30, 30))
    default, low, high = (pipeline.search(image, threshold=t) for t in (None, 0.1, 0.95))
    assert pipeline.detector.thresholds == [None, 0.1, 0.95, FLOOR]  # nothing passed 0.95: asked again at the floor
    assert [d.score for d in default.detections] == [0.9, 0.5] and [d.score for d in low.detections] == [0.9, 0.5, 0.2]
    assert [d.score for d in high.detections] == [0.9]  # only the best box, though it scores below 0.95
    assert default.crop.size == low.crop.size == high.crop.size != (60, 80)  # the best garment, with its margin
    assert pipeline.embedder.seen == [default.crop.size] * 3


def test_a_photo_whose_garments_all_score_low_is_searched_by_its_best_box(tmp_path):
    pipeline, _ = synthetic_pipeline(tmp_path, ["top"] * 6)
    image = Image.new("RGB", (60, 80), (200, 30, 30))
    pipeline.detector = ScoredDetector(factor=0.3)  # 0.27, 0.15, 0.06: none passes the default 0.4
    unsure = pipeline.search(image)
    assert [d.score for d in unsure.detections] == [pytest.approx(0.27)] and unsure.crop.size != (60, 80)
    pipeline.detector = ScoredDetector(factor=0.2)  # 0.18, 0.1, 0.04
    assert [d.score for d in pipeline.search(image, threshold=0.5).detections] == [pytest.approx(0.18)]
    pipeline.detector = ScoredDetector(factor=0.05)  # all below the floor: the whole photo is searched
    nothing = pipeline.search(image)
    assert nothing.detections == [] and nothing.crop.size == (60, 80)
    assert pipeline.detector.thresholds == [None, FLOOR]


def synthetic_pipeline(tmp_path, categories, index=None, attributes=None):
    """Products 1..n, whose vectors lie ever further from the query e0 as the id grows, over dummy images."""
    catalog = Catalog(tmp_path / "catalog.sqlite")
    attributes = attributes or [{}] * len(categories)
    ids = catalog.add_many([(f"p{i}.jpg", f"p{i}", c, a, {})
                            for i, (c, a) in enumerate(zip(categories, attributes, strict=True), 1)])
    angles = np.linspace(0.0, 1.5, len(ids))
    vectors = np.zeros((len(ids), 8), np.float32)
    vectors[:, 0], vectors[:, 1] = np.cos(angles), np.sin(angles)
    index = Index(8, {"name": "test"}) if index is None else index
    index.add(vectors, ids)
    query = Result(Image.new("RGB", (4, 4)), Image.new("RGB", (4, 4)), None, vector=np.eye(1, 8, dtype=np.float32))
    return Pipeline(catalog, index, MeanColourEmbedder()), query


def test_a_rare_category_is_found_by_searching_deeper(tmp_path):
    rare = set(range(60, 65)) | {250}  # dresses among 300 tops, all ranked after 59 tops
    pipeline, query = synthetic_pipeline(tmp_path, ["dress" if i in rare else "top" for i in range(1, 301)])
    assert [m.product.id for m in pipeline.rank(query, 3).matches] == [1, 2, 3]
    dresses = pipeline.rank(query, 5, category="dress").matches
    assert [m.product.id for m in dresses] == [60, 61, 62, 63, 64]
    assert [m.score for m in dresses] == sorted((m.score for m in dresses), reverse=True)
    assert [m.product.id for m in pipeline.similar(1, 2, category="dress")] == [60, 61]


class PaddedIndex(Index):
    """An index that, like FAISS's approximate ones, fills a short result with id -1 (score -FLT_MAX)."""

    def search(self, vectors, k=5):
        scores, ids = super().search(vectors, k)
        pad = k + 3 - ids.shape[1]
        return np.pad(scores, ((0, 0), (0, pad)), constant_values=-3.4e38), np.pad(ids, ((0, 0), (0, pad)),
                                                                                   constant_values=-1)


def test_ids_of_minus_one_are_dropped_not_looked_up(tmp_path):
    pipeline, query = synthetic_pipeline(tmp_path, ["top"] * 4, PaddedIndex(8, {"name": "test"}))
    assert pipeline.index.search(query.vector, 4)[1][0].tolist() == [1, 2, 3, 4, -1, -1, -1]
    assert [m.product.id for m in pipeline.rank(query, 6).matches] == [1, 2, 3, 4]
    assert [m.product.id for m in pipeline.rank(query, 6, min_score=-np.inf).matches] == [1, 2, 3, 4]


def test_min_score_k_and_manual_box(pipeline, image_tree):
    image = Image.open(image_tree / "top" / "item_01.jpg")
    assert len(pipeline.search(image, k=2).matches) == 2
    assert pipeline.search(image, min_score=1.01).matches == []
    boxed = pipeline.search(image, box=(10, 10, 60, 90))
    assert boxed.crop.size == (50, 80) and boxed.box == (10, 10, 60, 90)


def test_manual_crop_clips_and_rejects_empty_boxes():
    image = Image.new("RGB", (100, 50))
    assert manual_crop(image, (-10, -10, 40, 400)).size == (40, 50)
    with pytest.raises(OptionError, match="larger box"):
        manual_crop(image, (10, 10, 11, 40))


def test_tags_without_an_editor_or_bad_tags_are_clear_errors(pipeline, image_tree):
    image = image_tree / "top" / "item_01.jpg"
    with pytest.raises(TagError, match="valid attributes are"):
        pipeline.search(image, tags={"sleeves": "long"})
    with pytest.raises(EditError, match="No style editor"):
        pipeline.search(image, tags={"sleeve_length": "long"})


def test_a_bad_upload_raises_image_error(pipeline):
    from numbpie.images import ImageError

    with pytest.raises(ImageError):
        pipeline.search(io.BytesIO(b"GIF89a broken"))


def test_an_unfinished_index_is_refused_with_a_hint(tmp_path, image_tree, random_embedder):
    folder = tmp_path / "c"
    catalog = open_catalog(folder)
    import_folder(catalog, image_tree)
    index_catalog(folder, random_embedder)
    catalog.add(image_tree / "top" / "extra.jpg", "extra")
    with pytest.raises(ValueError, match="Finish it with"):
        Pipeline.open(folder, embedder=random_embedder)


def test_a_tag_edit_searches_with_the_edited_garment(pipeline, image_tree):
    from tests.test_gan_editor import tiny_editor

    pipeline.editor = tiny_editor()
    path = image_tree / "top" / "item_01.jpg"
    result = pipeline.search(path, tags={"sleeve_length": "long", "pattern": "floral"},
                             current={"category": "top", "sleeve_length": "short", "fit": "normal",
                                      "neckline": "round", "pattern": "solid"})
    assert [name for name, _ in result.edit.steps] == ["crop", "shape", "pattern"]
    assert result.query is result.edit.image and result.query.size == result.crop.size
    assert "edit" in result.timings
    edited_vector = pipeline.embedder.embed([result.query])
    scores, ids = pipeline.index.search(edited_vector, 5)
    assert [m.product.id for m in result.matches] == ids[0].tolist()
    assert result.matches[0].score < 0.9999  # no longer the exact catalog image


class ListeningTagger:
    """Reads every garment as a short-sleeved solid top, and remembers what it read."""

    def __init__(self):
        self.seen = []

    def tag(self, image):
        self.seen.append(image.size)
        return {"category": "top", "sleeve_length": "short", "fit": "normal", "neckline": "round", "pattern": "solid"}


def test_the_tagger_is_a_pipeline_part_that_tells_the_editor_the_present_tags(pipeline, image_tree):
    from tests.test_gan_editor import tiny_editor

    path = image_tree / "top" / "item_01.jpg"
    assert pipeline.tag(Image.open(path)) == {}  # no tagger: nothing is known
    pipeline.editor, pipeline.tagger = tiny_editor(), ListeningTagger()
    assert pipeline.tag(Image.open(path))["sleeve_length"] == "short"
    result = pipeline.search(path, tags={"sleeve_length": "long"}, box=(0, 0, 60, 90))
    assert pipeline.tagger.seen[-1] == result.crop.size == (60, 90)  # it read the searched garment
    assert [name for name, _ in result.edit.steps] == ["crop", "shape"] and "tag" in result.timings


def test_an_edit_the_editor_cannot_make_is_a_user_error(pipeline, image_tree):
    from tests.test_gan_editor import tiny_editor

    pipeline.editor = tiny_editor()
    with pytest.raises(UserError, match="stripes_add needs a CycleGAN"):
        pipeline.search(image_tree / "top" / "item_01.jpg", tags={"pattern": "stripes"},
                        current={"category": "top", "pattern": "solid"})


def test_rank_re_searches_a_prepared_query_without_embedding_again(pipeline, image_tree, monkeypatch):
    prepared = pipeline.prepare(image_tree / "top" / "item_01.jpg")
    assert prepared.matches == [] and prepared.vector.shape == (1, pipeline.embedder.dim)

    def no_embedding(images):
        raise AssertionError("rank must not embed")

    monkeypatch.setattr(pipeline.embedder, "embed", no_embedding)
    three = pipeline.rank(prepared, 3)
    tops = pipeline.rank(prepared, 5, category="top", min_score=0.1)
    assert len(three.matches) == 3 and prepared.matches == []  # the prepared query is left as it was
    assert all(m.product.category == "top" and m.score >= 0.1 for m in tops.matches)
    assert [m.product.id for m in three.matches] == [m.product.id for m in pipeline.rank(prepared, 5).matches[:3]]
    assert list(tops.timings) == ["load", "embed", "search", "lookup"]


def test_a_catalog_product_is_searched_with_its_indexed_vector(pipeline, monkeypatch):
    product = pipeline.catalog.get([pipeline.catalog.ids()[3]])[0]

    def no_embedding(images):
        raise AssertionError("a catalog product is never embedded again")

    monkeypatch.setattr(pipeline.embedder, "embed", no_embedding)
    query = pipeline.product_query(product.id)
    assert query.product == product and query.crop.size == Image.open(product.image).size
    assert query.vector == pytest.approx(pipeline.index.vectors([product.id]))
    result = pipeline.rank(query, 4)
    ids = [m.product.id for m in result.matches]
    assert len(ids) == 4 and product.id not in ids  # the query itself is shown as the query, not as a match
    assert ids == [m.product.id for m in pipeline.similar(product.id, 4)]


def test_a_product_no_longer_in_the_catalog_is_a_user_error(pipeline):
    with pytest.raises(UserError, match="no longer in this catalog"):
        pipeline.product_query(10_000)


def test_preference_order_puts_the_wanted_tags_first_and_keeps_the_order_within_each_group():
    from numbpie.attributes import preference_order

    tags = [{"sleeve_length": "long", "fit": "tight"}, {"sleeve_length": "short", "fit": "tight"}, {},
            {"sleeve_length": "short", "fit": "loose"}, {"sleeve_length": "short", "fit": "tight"}]
    assert preference_order(tags, {"sleeve_length": "short"}) == [1, 3, 4, 0, 2]
    assert preference_order(tags, {"sleeve_length": "short", "fit": "tight"}) == [1, 4, 0, 3, 2]
    assert preference_order(tags, {}) == [0, 1, 2, 3, 4]


def tagged_pipeline(tmp_path, sleeves):
    """`synthetic_pipeline` whose products carry `sleeves` (in order of falling similarity to the query)."""
    return synthetic_pipeline(tmp_path, ["top"] * len(sleeves), attributes=[{"sleeve_length": s} for s in sleeves])


def test_after_an_edit_the_products_carrying_the_changed_tag_come_first_by_similarity(tmp_path):
    pipeline, query = tagged_pipeline(tmp_path, ["long"] * 30 + ["short", "long", "short"] + ["long"] * 100)
    assert [m.product.id for m in pipeline.rank(query, 3).matches] == [1, 2, 3]
    edited = dataclasses.replace(query, prefer={"sleeve_length": "short"})
    matches = pipeline.rank(edited, 3).matches
    assert [m.product.id for m in matches] == [31, 33, 1]  # both short ones (from 100 deep), then the nearest
    assert [m.score for m in matches[:2]] == sorted((m.score for m in matches[:2]), reverse=True)


class StubbornEditor:
    """An editor that changes nothing: the edit it was asked for fails."""

    has_model_view = False

    def edit(self, image, tags, model_view=False, current=None):
        from gan import Edit

        return Edit(image.copy(), [("crop", image)])


def test_the_preferred_tags_are_what_the_tagger_reads_on_the_edit_or_the_request_without_a_tagger(pipeline,
                                                                                                  image_tree):
    path = image_tree / "top" / "item_01.jpg"
    pipeline.editor = StubbornEditor()
    current = {"category": "top", "sleeve_length": "short"}
    assert pipeline.search(path, tags={"sleeve_length": "long"}, current=current).prefer == {"sleeve_length": "long"}
    pipeline.tagger = ListeningTagger()  # reads short sleeves on the (unchanged) edit
    result = pipeline.search(path, tags={"sleeve_length": "long"}, current=current)
    assert result.prefer == {"sleeve_length": "short"}  # a failed edit is not dressed up by the results
    assert pipeline.tagger.seen == [result.query.size]
    assert pipeline.search(path).prefer == {}  # no edit, no preference


def test_warm_up_runs_every_model_once_on_a_catalog_picture(pipeline, monkeypatch):
    seen = []
    embed = pipeline.embedder.embed
    monkeypatch.setattr(pipeline.embedder, "embed", lambda images: seen.append(images[0].size) or embed(images))
    pipeline.detector, pipeline.tagger = ScoredDetector(), ListeningTagger()
    pipeline.warm_up()
    first = Image.open(next(iter(pipeline.catalog)).image)
    assert pipeline.detector.thresholds == [None]  # the detector ran on the picture,
    [crop] = seen  # then the embedder and the tagger, once each, on the detected garment
    assert pipeline.tagger.seen == [crop] and crop[0] < first.width and crop[1] < first.height
