"""A short training run on a tiny synthetic dataset: loss falls, checkpoints resume, export loads."""

import json

import numpy as np
import pytest
import torch

from numbpie import embedder
from numbpie.train_embedder import Options, cosface_loss, export, train


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from numbpie.synth import write_dataset

    out = tmp_path_factory.mktemp("synth")
    write_dataset(out, products=10, street_per_product=1, seed=5, progress=False)
    return out


def test_cosface_loss_prefers_the_right_proxy():
    proxies = torch.eye(3, 8)
    features = torch.eye(3, 8) * 5
    right = cosface_loss(features, proxies, torch.tensor([0, 1, 2]), scale=10, margin=0.1)
    wrong = cosface_loss(features, proxies, torch.tensor([1, 2, 0]), scale=10, margin=0.1)
    assert right < 0.01 < 10 < wrong


def test_training_resumes_and_exports_a_loadable_embedder(tiny_data, tmp_path):
    split = json.loads((tiny_data / "splits.json").read_text())
    assert split["train"]
    options = Options(data=str(tiny_data), out=str(tmp_path / "run"), input_size=80, batch_size=4,
                      steps=2, checkpoint_every=1, eval_every=0, threads=2)
    train(options, log=lambda *_: None)
    assert json.loads((tmp_path / "run" / "progress.json").read_text())["step"] == 2
    assert not (tmp_path / "run" / "best.json").exists()
    options.steps, options.eval_every = 3, 3
    lines = []
    train(options, log=lines.append)
    assert lines[0] == "resumed at step 2"
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert best["step"] == 3 and best["split"] == "val" and 0 <= best["map"] <= 1
    assert embedder.load(tmp_path / "run" / "best.safetensors").input_size == 80
    (tmp_path / "run" / "best.json").write_text(json.dumps({"map": 2.0}))  # unbeatable
    (tmp_path / "run" / "best.safetensors").unlink()
    from numbpie.train_embedder import _State, keep_if_best

    state = _State(options, classes=len(split["train"]))
    state.resume(tmp_path / "run")
    keep_if_best(state, options, log=lambda *_: None)
    assert not (tmp_path / "run" / "best.safetensors").exists()  # kept only when better
    path = export(tmp_path / "run", tmp_path / "e.safetensors")
    loaded = embedder.load(path)
    assert loaded.input_size == 80  # the preprocessing travels in the file's metadata
    from numbpie.synth import random_spec, render_product

    vectors = loaded.embed([render_product(random_spec(1))])
    assert vectors.shape == (1, 2048) and np.isfinite(vectors).all()


def test_lr_factor_warms_up_then_decays_to_zero():
    from numbpie.train_embedder import lr_factor

    factors = [lr_factor(s, 100) for s in range(100)]
    assert factors[0] < factors[4] == 1.0 and factors[-1] < 0.01
    assert all(a >= b for a, b in zip(factors[5:], factors[6:], strict=False))
