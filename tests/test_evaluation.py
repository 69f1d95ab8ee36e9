"""`numbpie.evaluation`: street-to-shop retrieval, the tagger and In-shop, on tiny generated data."""

import json

import pytest
from PIL import Image

from numbpie.cli import main
from numbpie.errors import DatasetError
from numbpie.evaluation.inshop import read_inshop_partition
from numbpie.evaluation.retrieval import evaluate_retrieval
from numbpie.evaluation.tagger import evaluate_tagger
from numbpie.synth import write_dataset


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    write_dataset(out, products=12, street_per_product=1, seed=5, progress=False)
    return out


class Pixels:
    """An 'embedder' that is the garment's mean colour: enough to find a product by its street crop."""

    def embed(self, pictures):
        import numpy as np

        return np.stack([np.asarray(p.convert("RGB").resize((4, 4)), np.float32).ravel() for p in pictures])


class Stripes:
    """A detector that always finds one box: the middle third of the photo."""

    def detect(self, image, threshold=None):
        from detector import Detection

        w, h = image.size
        return [Detection((w / 3, 0, 2 * w / 3, h), 0.9, "top")]


@pytest.mark.parametrize("crop", ["gt", "detector", "none"])
def test_retrieval_counts_every_held_out_street_garment(world, crop):
    splits = json.loads((world / "splits.json").read_text())
    metrics = evaluate_retrieval(world, Pixels(), crop=crop, split="test", detector=Stripes())
    assert metrics["gallery"] == len(splits["test"]) and metrics["queries"] >= len(splits["test"])
    assert 0 <= metrics["recall@1"] <= metrics["recall@5"] <= metrics["recall@10"] <= 1
    assert metrics["crop"] == crop and 0 < metrics["map"] <= 1


def test_a_folder_that_is_not_a_dataset_is_a_user_error(tmp_path, world):
    with pytest.raises(DatasetError, match="python -m numbpie synth"):
        evaluate_retrieval(tmp_path, Pixels())
    with pytest.raises(DatasetError, match="no split 'dev'"):
        evaluate_retrieval(world, Pixels(), split="dev")


def test_the_cli_says_when_data_is_not_a_dataset(tmp_path, capsys):
    assert main(["eval", "retrieval", "--data", str(tmp_path), "--embedder", "random"]) == 2
    assert "not a dataset written by python -m numbpie synth" in capsys.readouterr().err


class TrueTagger:
    """Reads every view as the catalog says, except that it calls every pattern solid."""

    input_size = 32

    def __init__(self, world):
        from numbpie.synth.splits import split_views

        self.truth = {view.tobytes(): {"category": p.category, **p.attributes}
                      for view, p, _ in split_views(world, "test", self.input_size, margin=0.1)}

    def tag_many(self, pictures):
        return [{**self.truth[p.tobytes()], "pattern": "solid"} for p in pictures]


def test_tagger_accuracy_is_per_view_kind_and_attribute(world):
    tagger = TrueTagger(world)
    scores = evaluate_tagger(world, tagger, "test")
    assert scores["product/category"] == scores["street/fit"] == 1.0
    patterns = [t["pattern"] for t in tagger.truth.values()]
    assert scores["product/pattern"] < 1.0 or set(patterns) == {"solid"}


def make_inshop(root, items: int = 4):
    """A tiny DeepFashion In-shop tree: per item one query and two gallery photos (one is a copy)."""
    rows = []
    for n in range(items):
        folder = root / "img" / "WOMEN" / "Dresses" / f"id_{n:08d}"
        folder.mkdir(parents=True)
        pictures = [Image.new("RGB", (64, 96), (60 * n, 255 - 60 * n, (90 * n) % 256)) for _ in range(2)]
        pictures[1].paste((255, 255, 255), (10, 10, 40, 50 + 5 * n))
        pictures[0].save(folder / "01_1_front.jpg", quality=95)
        pictures[0].save(folder / "01_2_side.jpg", quality=95)
        pictures[1].save(folder / "02_1_front.jpg", quality=95)
        name = f"img/WOMEN/Dresses/id_{n:08d}"
        rows += [f"{name}/01_1_front.jpg id_{n:08d} query", f"{name}/01_2_side.jpg id_{n:08d} gallery",
                 f"{name}/02_1_front.jpg id_{n:08d} gallery"]
    (root / "Eval").mkdir()
    (root / "Eval" / "list_eval_partition.txt").write_text(
        f"{len(rows)}\nimage_name item_id evaluation_status\n" + "\n".join(rows) + "\n")
    return root


def test_inshop_layout_is_read_and_evaluated(tmp_path, capsys):
    root = make_inshop(tmp_path / "inshop")
    split = read_inshop_partition(root)
    assert len(split["query"]) == 4 and len(split["gallery"]) == 8
    assert split["query"][0] == (root / "img/WOMEN/Dresses/id_00000000/01_1_front.jpg", "id_00000000")
    assert main(["eval", "inshop", "--root", str(root), "--embedder", "random", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["recall@1"] == 1.0 and metrics["queries"] == 4 and metrics["gallery"] == 8  # each query's copy


def test_inshop_errors_are_clear(tmp_path, capsys):
    assert main(["eval", "inshop", "--root", str(tmp_path), "--embedder", "random"]) == 2
    assert "list_eval_partition.txt is missing" in capsys.readouterr().err
    assert main(["eval", "inshop", "--embedder", "random"]) == 2
    assert "needs --root" in capsys.readouterr().err
