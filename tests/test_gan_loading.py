"""gan.load / gan.save / gan.load_fashion_gan: formats, detection, refusals."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gan
import numbpie.weights
from gan.editor import FASHION_GAN_LABELS, SHAPE_LAYOUT, Editor
from gan.loading import detect
from gan.models import Generator, ResnetGenerator, UnetGenerator
from numbpie.weights import WeightsError

MARKER = {"ran": False}


def _payload(path):
    """What a malicious file would run on unpickling; here it only leaves a trace."""
    MARKER["ran"] = True
    Path(path).write_text("pwned")
    return {}


class Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (_payload, (self.path,))


def image(size=32):
    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    trace = tmp_path / "trace.txt"
    path = tmp_path / "evil.pth"
    torch.save({"main.0.weight": torch.zeros(1), "extra": Evil(str(trace))}, path)
    assert b"_payload" in path.read_bytes()  # the payload really is in the file

    with pytest.raises(WeightsError, match="more than plain tensors"):
        gan.load(path)
    assert not trace.exists() and MARKER["ran"] is False


@pytest.mark.parametrize(
    "net, family, config",
    [
        (Generator(8, 13, 2), "stargan", {"conv_dim": 8, "c_dim": 13, "repeat_num": 2}),
        (
            ResnetGenerator(ngf=8, n_blocks=3),
            "cyclegan",
            {"input_nc": 3, "output_nc": 3, "ngf": 8, "n_blocks": 3},
        ),
        (
            UnetGenerator(num_downs=6, ngf=8),
            "pix2pix",
            {"input_nc": 3, "output_nc": 3, "num_downs": 6, "ngf": 8},
        ),
    ],
)
def test_detect_reads_family_and_sizes_from_shapes(net, family, config):
    assert detect(net.state_dict()) == (family, config)


def test_safetensors_round_trip_keeps_weights_size_and_labels(tmp_path):
    torch.manual_seed(0)
    editor = Editor("stargan", Generator(8, 13, 1).eval(), 24, SHAPE_LAYOUT, "shape")
    path = gan.save(editor, tmp_path / "stargan" / "shape.safetensors")

    loaded = gan.load(path)

    assert (loaded.family, loaded.image_size, loaded.layout, loaded.name) == (
        "stargan",
        24,
        SHAPE_LAYOUT,
        "shape",
    )
    tags = {"category": "top", "sleeve_length": "long", "fit": "loose", "neckline": "v"}
    assert np.array_equal(
        np.asarray(loaded.apply(image(), tags)), np.asarray(editor.apply(image(), tags))
    )


@pytest.mark.parametrize("family", ["stargan", "cyclegan"])
def test_residual_generators_start_as_the_identity_and_round_trip(family, tmp_path):
    torch.manual_seed(0)
    net = Generator(8, 13, 1, residual=True) if family == "stargan" else ResnetGenerator(ngf=4, n_blocks=1, residual=True)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    label = torch.zeros(2, 13)
    run = (lambda n, v: n(v, label)) if family == "stargan" else (lambda n, v: n(v))
    assert torch.equal(run(net.eval(), x), x)

    for p in net.parameters():  # a trained one: no longer the identity
        p.data.normal_(0, 0.2)
    editor = Editor(family, net.eval(), 16, SHAPE_LAYOUT if family == "stargan" else (), "r")
    loaded = gan.load(gan.save(editor, tmp_path / "r.safetensors"))
    assert loaded.net.residual
    assert torch.equal(run(loaded.net, x), run(net, x))
    assert not torch.equal(run(loaded.net, x), x)


def test_pth_state_dicts_load_with_module_prefix(tmp_path):
    net = ResnetGenerator(ngf=4, n_blocks=1)
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "g.pth"
    )
    editor = gan.load(tmp_path / "g.pth")
    assert editor.family == "cyclegan" and editor.image_size == 256
    assert all(torch.equal(editor.net.state_dict()[k], v) for k, v in net.state_dict().items())


def test_cyclegan_files_without_running_stats_load(tmp_path):
    state = {
        k: v
        for k, v in ResnetGenerator(ngf=4, n_blocks=1).state_dict().items()
        if "running" not in k and "batches" not in k
    }
    torch.save(state, tmp_path / "latest_net_G.pth")
    assert gan.load(tmp_path / "latest_net_G.pth").family == "cyclegan"


def test_refusals_are_one_clear_sentence(tmp_path):
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="not a StarGAN, CycleGAN or pix2pix generator"):
        gan.load(tmp_path / "other.pth")
    torch.save(ResnetGenerator(ngf=4, n_blocks=1).state_dict(), tmp_path / "g.pth")
    with pytest.raises(WeightsError, match="holds a cyclegan generator, not a stargan one"):
        gan.load(tmp_path / "g.pth", family="stargan")
    unet = {
        k: v
        for k, v in UnetGenerator(num_downs=5, ngf=2).state_dict().items()
        if "running_var" not in k
    }
    torch.save(unet, tmp_path / "unet.pth")
    with pytest.raises(WeightsError, match="does not match a pix2pix generator .*missing"):
        gan.load(tmp_path / "unet.pth")
    with pytest.raises(WeightsError, match="valid names are"):
        gan.load("no-such-gan")
    with pytest.raises(WeightsError, match="load_fashion_gan"):
        gan.load(tmp_path)
    with pytest.raises(WeightsError, match="do not add up"):
        gan.load(
            gan.save(Editor("stargan", Generator(4, 3, 1), 16), tmp_path / "s.safetensors"),
            labels={"fit": ["a", "b"]},
        )


def test_registered_names_resolve_through_the_manifest(tmp_path, monkeypatch):
    gan.save(Editor("stargan", Generator(4, 3, 1), 16), tmp_path / "fit-synth.safetensors")
    manifest = {
        "assets": {
            "gan/fit": {
                "kind": "gan",
                "file": "fit-synth.safetensors",
                "also_found_in": [str(tmp_path)],
                "image_size": 20,
                "labels": {"fit": ["loose", "normal", "tight"]},
            }
        }
    }
    monkeypatch.setattr(numbpie.weights, "manifest", lambda: manifest)
    editor = gan.load("fit")
    assert editor.image_size == 20
    assert editor.layout == (("fit", ("loose", "normal", "tight")),)


def write_fashion_gan(root: Path):
    """A fashion_gan models/ folder with small random generators of the original kinds."""
    (root / "stargan").mkdir(parents=True)
    for name, stem in [("sleeve_length", "sleeve_length"), ("fit", "fit"), ("length", "Length-G")]:
        torch.save(
            Generator(4, len(FASHION_GAN_LABELS[name]), 1).state_dict(),
            root / "stargan" / f"{stem}.pth",
        )
    for pattern in ("floral", "stripes"):
        folder = root / "cyclegan" / pattern
        folder.mkdir(parents=True)
        for stem in ("add_epoch200_net_G", "add_epoch100_net_G", "remove_latest_net_G"):
            torch.save(
                ResnetGenerator(ngf=4, n_blocks=1).state_dict(), folder / f"{pattern}_{stem}.pth"
            )
    torch.save(UnetGenerator(num_downs=8, ngf=2).state_dict(), root / "pix2pix_models.pth")


def test_a_fashion_gan_folder_loads_as_a_style_editor(tmp_path):
    write_fashion_gan(tmp_path / "models")

    editor = gan.load_fashion_gan(tmp_path)  # the folder models.zip was unzipped into

    assert sorted(a for e in editor.stargan for a in e.attributes) == [
        "fit",
        "length",
        "sleeve_length",
    ]
    assert all(e.image_size == 128 for e in editor.stargan)
    assert sorted(editor.cyclegan) == [
        "floral_add",
        "floral_remove",
        "stripes_add",
        "stripes_remove",
    ]
    assert editor.cyclegan["floral_add"].name == "floral_add_epoch100_net_G"  # first by name
    assert editor.pix2pix.family == "pix2pix" and editor.pix2pix.image_size == 256
    current = {
        "category": "top",
        "sleeve_length": "short",
        "fit": "normal",
        "neckline": "round",
        "pattern": "floral",
    }
    result = editor.edit(
        image(), {"fit": "loose", "pattern": "stripes"}, model_view=True, current=current
    )
    assert [name for name, _ in result.steps] == ["crop", "shape", "pattern", "model"]
    assert result.image.size == (32, 32)


def test_an_empty_folder_says_where_models_come_from(tmp_path):
    with pytest.raises(WeightsError, match="download_data.sh"):
        gan.load_fashion_gan(tmp_path)
