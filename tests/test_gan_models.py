"""gan networks: original fashion_gan checkpoints load; every network runs at small sizes."""

import json
import re
from pathlib import Path

import pytest
import torch

import gan
from gan.editor import FASHION_GAN_LABELS
from gan.models import Discriminator, Generator, PatchDiscriminator, ResnetGenerator, UnetGenerator

# A copy of ../shared/reference/fashion_gan_checkpoints.json: the originals' keys and shapes.
REFERENCE = Path(gan.__file__).with_name("fashion_gan_checkpoints.json")
CHECKPOINTS = json.loads(REFERENCE.read_text())


def random_state(shapes: dict) -> dict:
    """Random tensors of exactly `shapes`; variances positive, batch counters integer."""
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape) + 0.5
        else:
            state[key] = torch.randn(shape) * 0.05
    return state


def test_generators_have_the_original_keys_and_shapes_at_default_sizes():
    expected = {
        "stargan_G[fit]": Generator(conv_dim=64, c_dim=3, repeat_num=6),
        "cyclegan_G": ResnetGenerator(),
        "pix2pix_G": UnetGenerator(),
    }
    for name, net in expected.items():
        shapes = next(v for k, v in CHECKPOINTS.items() if k.startswith(name))
        assert {k: list(v.shape) for k, v in net.state_dict().items()} == shapes


@pytest.mark.slow
@pytest.mark.parametrize("entry", list(CHECKPOINTS))
def test_original_checkpoint_loads_and_runs(entry, tmp_path):
    shapes = CHECKPOINTS[entry]
    family = entry.split("_G")[0]
    attribute = re.search(r"\[(\w+)\]", entry)
    path = tmp_path / f"{attribute.group(1) if attribute else family}.pth"
    state = random_state(shapes)
    torch.save(state, path)

    editor = gan.load(path)

    assert editor.family == family
    assert not editor.net.training
    loaded = editor.net.state_dict()
    assert {k: list(v.shape) for k, v in loaded.items()} == shapes
    assert all(torch.equal(loaded[k], state[k]) for k in shapes)
    size = (
        256 if family == "pix2pix" else 64
    )  # the U-Net needs 2**8 px; the others any multiple of 4
    x = torch.rand(2, 3, size, size) * 2 - 1
    with torch.inference_mode():
        if family == "stargan":
            c_dim = int(re.search(r"c_dim=(\d+)", entry).group(1))
            assert editor.layout == ((attribute.group(1), FASHION_GAN_LABELS[attribute.group(1)]),)
            y = editor.net(x, torch.eye(c_dim)[:2])
        else:
            y = editor.net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all() and y.min() >= -1 and y.max() <= 1


@pytest.mark.parametrize(
    "net, inputs, shape",
    [
        (
            Generator(conv_dim=8, c_dim=13, repeat_num=2),
            (torch.zeros(2, 3, 32, 32), torch.ones(2, 13)),
            (2, 3, 32, 32),
        ),
        (ResnetGenerator(ngf=8, n_blocks=2), (torch.zeros(2, 3, 32, 32),), (2, 3, 32, 32)),
        (UnetGenerator(num_downs=5, ngf=8), (torch.zeros(2, 3, 32, 32),), (2, 3, 32, 32)),
        (
            PatchDiscriminator(input_nc=6, ndf=8, n_layers=3, norm="batch"),
            (torch.zeros(2, 6, 64, 64),),
            (2, 1, 6, 6),
        ),
        (PatchDiscriminator(ndf=8, n_layers=2), (torch.zeros(2, 3, 32, 32),), (2, 1, 6, 6)),
    ],
)
def test_networks_at_small_sizes_have_expected_output_shapes(net, inputs, shape):
    out = net.eval()(*inputs)
    assert out.shape == shape
    assert torch.isfinite(out).all()


def test_stargan_discriminator_gives_patch_map_and_domain_logits():
    critic = Discriminator(image_size=32, conv_dim=8, c_dim=13, repeat_num=4)
    src, cls = critic(torch.zeros(3, 3, 32, 32))
    assert src.shape == (3, 1, 2, 2)
    assert cls.shape == (3, 13)


def test_stargan_discriminator_refuses_sizes_it_cannot_reduce():
    with pytest.raises(ValueError, match="divisible"):
        Discriminator(image_size=48, conv_dim=8, c_dim=3, repeat_num=5)


def test_stargan_output_depends_on_the_label():
    torch.manual_seed(0)
    net = Generator(conv_dim=8, c_dim=3, repeat_num=1).eval()
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    a, b = net(x, torch.tensor([[1.0, 0, 0]])), net(x, torch.tensor([[0, 0, 1.0]]))
    assert (a - b).abs().max() > 1e-4


def test_cyclegan_instance_norm_ignores_its_running_buffers():
    net = ResnetGenerator(ngf=8, n_blocks=1).eval()
    x = torch.rand(1, 3, 16, 16)
    before = net(x)
    for name, buffer in net.named_buffers():
        if name.endswith("running_mean"):
            buffer.fill_(100.0)
    assert torch.equal(net(x), before)
    assert all(b.eq(100).all() for n, b in net.named_buffers() if n.endswith("running_mean"))
