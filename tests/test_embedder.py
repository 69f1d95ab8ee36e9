import copy
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models import inception_v3

from numbpie import embedder, weights
from tests.conftest import make_image


def test_embed_gives_unit_2048_rows(random_embedder):
    vectors = random_embedder.embed([make_image(n) for n in range(3)])
    assert vectors.shape == (3, 2048) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert random_embedder.embed([]).shape == (0, 2048)


def test_embedding_is_deterministic_and_batch_independent(random_embedder):
    pictures = [make_image(n) for n in range(10)]
    one_by_one = np.concatenate([random_embedder.embed([p]) for p in pictures])
    batched = random_embedder.embed(pictures)
    np.testing.assert_allclose(one_by_one, batched, atol=1e-4)
    again = embedder.load("random").embed(pictures[:2])
    np.testing.assert_allclose(again, batched[:2], atol=1e-5)


def test_letterbox_keeps_aspect_ratio():
    tall = Image.new("RGB", (50, 100), (0, 0, 0))
    boxed = embedder.letterbox(tall, 64)
    pixels = np.asarray(boxed)
    assert boxed.size == (64, 64)
    assert pixels[:, :10].min() == 255 and pixels[:, 30].max() == 0  # white side bands, black middle


def test_to_batch_normalises_with_mean_and_std():
    batch = embedder.to_batch([Image.new("RGB", (8, 8), (255, 0, 128))], 8, (0.5, 0.5, 0.5), (0.5, 0.25, 0.5))
    assert batch.shape == (1, 3, 8, 8) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[0, :, 4, 4], [1.0, -2.0, (128 / 255 - 0.5) / 0.5], atol=1e-6)


@pytest.fixture
def downloads(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "DOWNLOADS_DIR", tmp_path)
    return tmp_path


def test_imagenet_weights_load_when_torchvisions_file_is_present(downloads):
    with pytest.raises(weights.WeightsError, match="download_data.sh --only embedder/imagenet"):
        embedder.load("imagenet")
    torch.manual_seed(1)
    reference = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True)
    torch.save(reference.state_dict(), downloads / "inception_v3_google-0cc3c7bd.pth")
    model = embedder.load("imagenet", precision="fp32")  # compared with an fp32 forward below
    assert model.input_size == 299 and model.model.transform_input
    picture = make_image(3, size=(120, 160))
    reference.fc = torch.nn.Identity()
    expected = reference.eval()(torch.from_numpy(embedder.to_batch([picture], 299, model.mean, model.std)))
    np.testing.assert_allclose(model.embed([picture])[0], torch.nn.functional.normalize(expected)[0].detach().numpy(), atol=1e-4)


def test_a_state_dict_path_loads_and_a_bad_file_is_refused(tmp_path):
    state = embedder.build_inception().state_dict()
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "mine.pth")
    assert embedder.load(tmp_path / "mine.pth").embed([make_image(0)]).shape == (1, 2048)
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(weights.WeightsError, match="not an Inception-V3"):
        embedder.load(tmp_path / "other.pth")
    with pytest.raises(weights.WeightsError, match="valid names are"):
        embedder.load("no-such-model")


class Payload:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').touch()",))


def test_a_pickle_with_a_payload_is_refused_and_never_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "evil.pth", "wb") as handle:
        pickle.dump({"state_dict": Payload()}, handle)
    with pytest.raises(weights.WeightsError, match="refuses to load"):
        embedder.load(tmp_path / "evil.pth")
    assert not (tmp_path / "PWNED").exists()


def test_bf16_embeddings_stay_close_to_fp32():
    from numbpie.synth import random_spec, render_product

    pictures = [render_product(random_spec(n), size=128) for n in range(3)]
    fp32 = embedder.load("random").embed(pictures)
    bf16 = embedder.load("random", precision="bf16").embed(pictures)
    assert bf16.dtype == np.float32 and np.allclose(np.linalg.norm(bf16, axis=1), 1, atol=1e-5)
    assert (np.sum(fp32 * bf16, axis=1) > 0.99).all()
    with pytest.raises(ValueError, match="fp32, bf16"):
        embedder.load("random", precision="int4")


def _eager(model, batch: np.ndarray, bf16: bool) -> np.ndarray:
    """The network as trained, run as embed ran it before the frozen copy: unit rows (autocast for bf16)."""
    x = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last if bf16 else torch.contiguous_format)
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        return torch.nn.functional.normalize(model(x).float()).numpy()


@pytest.mark.parametrize(("precision", "agreement"), [("bf16", 0.999), ("fp32", 0.99999)])
def test_the_frozen_network_gives_the_vectors_of_the_trained_one(precision, agreement):
    """The bundled embedder's folded, frozen, fused copy against its eager forward, on product and street views."""
    from numbpie.synth import random_spec, render_product, render_street

    bundled = embedder.load("bundled", precision=precision)
    pictures = [render_product(random_spec(n), size=160) for n in range(4)]
    streets = [render_street(random_spec(n), seed=n, size=(320, 240)) for n in range(4)]
    pictures += [image.crop(tuple(round(v) for v in boxes[0])) for image, boxes in streets]  # garment crops
    vectors = bundled.embed(pictures)
    expected = _eager(copy.deepcopy(bundled.model),
                      embedder.to_batch(pictures, bundled.input_size, bundled.mean, bundled.std),
                      precision == "bf16")
    assert np.sum(vectors * expected, axis=1).min() >= agreement
    assert np.sum(bundled.embed(pictures[:1]) * expected[:1]) >= agreement  # a single query, as the page runs
    assert bundled.model.training is False and next(bundled.model.parameters()).dtype == torch.float32


def test_a_replaced_network_is_frozen_anew_and_the_weights_are_copied(random_embedder):
    """The frozen copy follows `model` when it is replaced, and never changes the model it was made from."""
    pictures = [make_image(n) for n in range(2)]
    weights_before = {k: v.clone() for k, v in random_embedder.model.state_dict().items()}
    before = random_embedder.embed(pictures)
    for key, value in random_embedder.model.state_dict().items():
        torch.testing.assert_close(value, weights_before[key], rtol=0, atol=0)
    torch.manual_seed(5)
    other = embedder.build_inception()  # other random weights
    random_embedder.model = other.eval()
    after = random_embedder.embed(pictures)
    expected = _eager(other, embedder.to_batch(pictures, random_embedder.input_size, random_embedder.mean,
                                               random_embedder.std), random_embedder.precision == "bf16")
    assert np.sum(after * expected, axis=1).min() >= 0.99
    assert np.sum(after * before, axis=1).max() < 0.99
