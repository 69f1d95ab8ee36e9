"""gan.train: data, losses, a few training steps of each GAN on a fake renderer, checkpoints and resume."""

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import gan
from gan.editor import SHAPE_LAYOUT
from gan.train import (
    TRAIN_SEEDS,
    classification_loss,
    data_seeds,
    networks,
    parse_options,
    stargan_batch,
    train,
)
from numbpie.attributes import ATTRIBUTES, PALETTE, applies_to
from numbpie.catalog import Catalog
from numbpie.errors import TrainingError


@dataclasses.dataclass(frozen=True)
class FakeSpec:
    """The fields of numbpie.synth.GarmentSpec that training reads."""

    category: str
    sleeve_length: str
    fit: str
    neckline: str
    length: str
    pattern: str
    color: str

    @property
    def attributes(self):
        names = [n for n in ATTRIBUTES if n != "category" and applies_to(n, self.category)]
        return {n: getattr(self, n) for n in names}


def fake_spec(seed, category=None):
    rng = np.random.default_rng(seed)
    pick = {n: str(v[rng.integers(len(v))]) for n, v in ATTRIBUTES.items()}
    return FakeSpec(**pick)


def fake_render(spec, size=256, worn=False):
    """A flat-coloured block whose width, top, neck notch, hem and stripes follow the attributes."""
    index = {
        n: ATTRIBUTES[n].index(getattr(spec, n))
        for n in ("sleeve_length", "fit", "neckline", "length")
    }
    pixels = np.full((size, size, 3), 240, np.uint8)
    half, top = size * (2 + index["fit"]) // 10, size // 4 - 2 * index["sleeve_length"]
    bottom = (
        size
        - size // 5
        + (2 * index["length"] if spec.category == "dress" else 0)
        - (3 if worn else 0)
    )
    pixels[top:bottom, size // 2 - half : size // 2 + half] = PALETTE[spec.color]
    pixels[top : top + 3, size // 2 - 2 * index["neckline"] - 1 : size // 2 + 1] = 240
    if spec.pattern != "solid":
        pixels[
            top : bottom : 4 if spec.pattern == "stripes" else 6,
            size // 2 - half : size // 2 + half,
        ] = 255
    return Image.fromarray(pixels, "RGB")


WORLD = SimpleNamespace(
    random_spec=fake_spec,
    render_product=fake_render,
    render_model=lambda spec, size=256: fake_render(spec, size, worn=True),
    true_edit=lambda spec, tags, size=256, source=None: fake_render(dataclasses.replace(spec, **tags), size),
)

TINY = [
    "--data",
    "synth",
    "--image-size",
    "32",
    "--width",
    "4",
    "--blocks",
    "1",
    "--batch-size",
    "2",
    "--eval-every",
    "2",
    "--checkpoint-every",
    "2",
    "--val-count",
    "4",
    "--precision",
    "fp32",
    "--log-every",
    "1",
    "--quiet",
]


def options(family, out, steps, *extra):
    return parse_options([family, *TINY, "--out", str(out), "--steps", str(steps), *extra])


def test_stargan_batches_change_exactly_one_shape_attribute():
    batch = stargan_batch(WORLD, range(8), np.random.default_rng(0), 32)
    assert batch["x"].shape == batch["y"].shape == (8, 3, 32, 32)
    starts = np.cumsum([0] + [len(v) for _, v in SHAPE_LAYOUT])
    for c_org, c_trg in zip(batch["c_org"], batch["c_trg"], strict=True):
        changed = [
            not torch.equal(c_org[a:b], c_trg[a:b])
            for a, b in zip(starts[:-1], starts[1:], strict=True)
        ]
        assert sum(changed) == 1
    assert (batch["x"] - batch["y"]).abs().flatten(1).amax(1).min() > 0


def test_classification_loss_skips_absent_groups():
    labels = torch.tensor([[0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0]], dtype=torch.float32)
    right = labels * 20 - 10
    assert classification_loss(right, labels) < 1e-6
    wrong = right.clone()
    wrong[0, 10:] = torch.tensor([10.0, -10, -10])  # length logits: ignored for a top
    assert classification_loss(wrong, labels) < 1e-6
    wrong[0, :4] = torch.tensor([10.0, -10, -10, -10])
    assert classification_loss(wrong, labels) > 10


def test_family_defaults():
    opt = parse_options(["pix2pix", "--data", "synth", "--image-size", "64"])
    assert (opt.num_downs, opt.lambda_l1, opt.d_layers, opt.pattern, opt.edits) == (6, 100.0, 3, None, None)
    opt = parse_options(["tagunet", "--edits", "pattern", "--data", "synth"])
    assert (opt.image_size, opt.lambda_low, opt.residual, opt.out) == (96, 0.0, False, "runs/tagunet")
    opt = parse_options(["tagunet", "--data", "synth"])
    assert (opt.edits, opt.lambda_low, opt.lambda_l1) == ("shape", 0.0, 10.0)


def test_data_seeds_keep_training_apart_from_held_out_products(tmp_path):
    pool, shown = data_seeds("synth")
    assert pool is None and max(shown) < TRAIN_SEEDS[0] == 2**31  # synth datasets use seeds < 2**31

    catalog = Catalog(tmp_path / "catalog.sqlite")
    splits = ["train", "test", "train", "val", "test", "train"]
    catalog.add_many(
        (tmp_path / f"{i}.png", "t", "top", {}, {"split": split, "seed": 100 + i})
        for i, split in enumerate(splits)
    )
    catalog.close()
    pool, shown = data_seeds(str(tmp_path))
    assert pool.tolist() == [100, 102, 105] and shown == [101, 104]

    with pytest.raises(TrainingError, match="no catalog.sqlite"):
        data_seeds(str(tmp_path / "missing"))


@pytest.mark.parametrize(
    "family, extra, rows, exported",
    [
        ("stargan", [], 3, "stargan/shape.safetensors"),
        ("cyclegan", ["--pattern", "stripes"], 6, "cyclegan/stripes/stripes_add.safetensors"),
        ("pix2pix", [], 3, "pix2pix.safetensors"),
        ("tagunet", ["--edits", "shape", "--blocks", "2"], 3, "stargan/shape.safetensors"),
        ("tagunet", ["--edits", "pattern", "--blocks", "2"], 3, "cyclegan/pattern.safetensors"),
    ],
)
def test_two_training_steps_write_checkpoint_samples_log_and_loadable_weights(
    tmp_path, family, extra, rows, exported
):
    torch.manual_seed(0)
    out = train(options(family, tmp_path, 2, *extra), world=WORLD)

    info = json.loads((out / "checkpoint.json").read_text())
    assert info["step"] == 2 and info["fixed"]["family"] == family
    assert any(k.startswith("optim.") for k in load_file(out / "checkpoint.safetensors"))
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [1, 2]
    assert all(np.isfinite(v) for entry in log for v in entry.values())
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [row["step"] for row in history] == [2] and history[0]["l1_ratio"] > 0
    sample = Image.open(out / "samples" / "latest.png")
    assert sample.size == (6 * 32, rows * 32)

    best = out / "best"
    editor = gan.load(best / exported)
    assert editor.image_size == 32
    assert editor.family == {"tagunet": "stargan" if "shape" in extra else "pattern"}.get(family, family)
    styled = gan.load_fashion_gan(best)
    assert (styled.pix2pix is not None) == (family == "pix2pix")
    directions = {"cyclegan": ["stripes_add", "stripes_remove"],
                  "tagunet": ["floral_add", "floral_remove", "stripes_add", "stripes_remove"] if "pattern" in extra else []}
    assert sorted(styled.cyclegan) == directions.get(family, [])


def test_a_tagunet_starts_as_the_identity_and_its_edit_moves_towards_the_truth(tmp_path):
    opt = options("tagunet", tmp_path, 0, "--blocks", "2")
    G = networks(opt)["G"]
    batch = stargan_batch(WORLD, range(4), np.random.default_rng(0), 32)
    assert (G(batch["x"], batch["c_trg"]) - batch["x"]).abs().max() < 0.01
    optimizer = torch.optim.Adam(G.parameters(), 3e-3)
    from gan.train import paired_l1

    for _ in range(150):
        loss = paired_l1(G(batch["x"], batch["c_trg"]), batch["y"], batch["x"], 10.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    fake = G(batch["x"], batch["c_trg"])
    assert (fake - batch["y"]).abs().mean() < 0.5 * (batch["x"] - batch["y"]).abs().mean()


def test_a_tagunet_paints_added_parts_in_the_ground_colour_and_removed_ones_in_the_backdrop():
    from gan.tagunet import OUTPUTS, TagUnet, backdrop_colour, ground_colour

    net = TagUnet(c_dim=2, ngf=8, levels=2)
    x = torch.full((1, 3, 16, 16), 0.9)
    x[:, :, 4:12, 4:12] = torch.tensor([0.5, -0.6, 0.1])[None, :, None, None]  # a garment on a light backdrop
    with torch.no_grad():
        net.out.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0]))  # blend every pixel into the garment colour
        painted = net(x, torch.zeros(1, 2))
        net.out.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0]))  # ... or into the backdrop
        erased = net(x, torch.zeros(1, 2))
    assert OUTPUTS == 5
    assert torch.allclose(ground_colour(x)[0], torch.tensor([0.5, -0.6, 0.1]), atol=1e-6)
    assert torch.allclose(backdrop_colour(x)[0], torch.full((3,), 0.9))
    assert torch.allclose(painted, torch.tensor([0.5, -0.6, 0.1])[None, :, None, None].expand_as(x), atol=1e-6)
    assert torch.allclose(erased, torch.full_like(x, 0.9), atol=1e-6)


def test_a_tagunet_file_from_before_the_blend_outputs_loads_as_the_same_function():
    from gan.tagunet import TagUnet, widen_output

    torch.manual_seed(0)
    net = TagUnet(c_dim=2, ngf=8, levels=2)
    with torch.no_grad():
        net.out.weight.normal_(0, 0.1)
    old = {k: v.clone() for k, v in net.state_dict().items()}
    old["out.weight"], old["out.bias"] = old["out.weight"][:3], old["out.bias"][:3]  # a 3-channel head
    with torch.no_grad():
        net.out.weight[3:] = 0
        net.out.bias[3:] = 0
        x = torch.rand(2, 3, 16, 16) * 2 - 1
        expected = net(x, torch.ones(2, 2))
        again = TagUnet(c_dim=2, ngf=8, levels=2)
        again.load_state_dict(widen_output(old))
        assert torch.equal(again(x, torch.ones(2, 2)), expected)


def test_resuming_gives_the_same_weights_as_training_straight_through(tmp_path):
    train(options("stargan", tmp_path / "straight", 3), world=WORLD)
    train(options("stargan", tmp_path / "resumed", 2), world=WORLD)
    train(options("stargan", tmp_path / "resumed", 3), world=WORLD)

    a = load_file(tmp_path / "straight" / "checkpoint.safetensors")
    b = load_file(tmp_path / "resumed" / "checkpoint.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "resumed" / "checkpoint.json").read_text())["step"] == 3
    torch.manual_seed(0)
    initial = networks(options("stargan", tmp_path, 3))["G"].state_dict()
    assert not all(torch.equal(a[f"G.{k}"], initial[k]) for k in initial)  # training did move the weights


def test_resuming_with_other_sizes_is_refused(tmp_path):
    train(options("stargan", tmp_path, 1), world=WORLD)
    with pytest.raises(TrainingError, match="width=4"):
        train(options("stargan", tmp_path, 2, "--width", "8"), world=WORLD)


def test_paired_l1_weights_the_pixels_the_edit_changes():
    from gan.train import paired_l1

    source = torch.zeros(1, 3, 4, 4)
    truth = source.clone()
    truth[..., 0, 0] = 1.0  # the edit changes one pixel of 16
    assert paired_l1(source, truth, source, focus=0.0) == pytest.approx(3 / 48)
    assert paired_l1(source, truth, source, focus=9.0) == pytest.approx(10 * 3 / 48)
    wrong_elsewhere = truth.clone()
    wrong_elsewhere[..., 3, 3] = 1.0  # an error where nothing changed counts once
    assert paired_l1(wrong_elsewhere, truth, source, focus=9.0) == pytest.approx(3 / 48)
