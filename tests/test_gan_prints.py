"""gan.prints: the house prints, the true pattern edit, and the pattern TagUnet's blend towards the print."""

import dataclasses

import numpy as np
import pytest
import torch

import gan
from gan.batches import PATTERN_LAYOUT, pattern_batch, synth_world
from gan.editor import Editor, to_tensor
from gan.loading import pattern_editors, save
from gan.prints import ground_colour, house_alpha, house_print, print_colour, true_edit
from gan.tagunet import FixedTags, TagUnet
from gan.train import paired_l1
from numbpie.attributes import PALETTE
from numbpie.synth import random_spec, render_product
from numbpie.synth.product import product_shot

PATTERNS = PATTERN_LAYOUT[0][1]  # solid, floral, stripes
LUMA = torch.tensor([0.299, 0.587, 0.114])


def spec_with(pattern, seed=3):
    return dataclasses.replace(random_spec(seed), pattern=pattern)


@pytest.mark.parametrize("pattern, share", [("floral", (0.15, 0.4)), ("stripes", (0.35, 0.45))])
def test_a_house_print_is_the_same_every_time_and_covers_a_sensible_share(pattern, share):
    for size in (32, 96):
        alpha = house_alpha(pattern, size, size)
        assert torch.equal(alpha, house_alpha(pattern, size, size))
        assert share[0] < alpha.mean() < share[1] and 0 <= alpha.min() and alpha.max() <= 1
    assert house_alpha(pattern, 64, 48).shape == (64, 48)


def test_print_colours_stand_out_from_every_ground():
    grounds = torch.tensor([*PALETTE.values(), (0, 0, 0), (255, 255, 255), (128, 128, 128)]) / 127.5 - 1
    for shade in (0.7, 1.0):  # the median of a shaded garment is darker than its palette colour
        g = (grounds * 0.5 + 0.5) * shade * 2 - 1
        contrast = ((print_colour(g) - g) * 0.5) @ LUMA
        assert contrast.abs().min() > 0.3
    dark, light = torch.tensor([[-0.8, -0.8, -0.6]]), torch.tensor([[0.8, 0.8, 0.7]])
    assert (print_colour(dark) > dark).all() and (print_colour(light) < light).all()


@pytest.mark.parametrize("source, target", [("solid", "floral"), ("stripes", "floral"), ("floral", "stripes")])
def test_the_true_pattern_edit_is_the_solid_render_outside_the_garment_and_printed_inside(source, target):
    spec = spec_with(source)
    truth = np.asarray(true_edit(spec, {"pattern": target}, size=64), np.float32)
    solid, coverage = product_shot(dataclasses.replace(spec, pattern="solid"), size=64)
    solid = np.asarray(solid, np.float32)
    outside, inside = coverage == 0, coverage > 0.99
    assert np.array_equal(truth[outside], solid[outside])
    assert np.abs(truth[inside] - solid[inside]).mean() > 20
    assert np.array_equal(np.asarray(true_edit(spec, {"pattern": "solid"}, size=64)), np.asarray(solid, np.uint8))


def test_the_true_edit_keeps_shape_edits_and_unchanged_patterns_as_rendered():
    spec = spec_with("floral")
    assert np.array_equal(np.asarray(true_edit(spec, {"fit": "loose"}, size=32)),
                          np.asarray(render_product(dataclasses.replace(spec, fit="loose"), size=32)))
    source = render_product(spec, size=32)
    assert true_edit(spec, {"pattern": "floral"}, size=32, source=source) is source


def pattern_net():
    return TagUnet(c_dim=3, ngf=8, levels=2, prints=PATTERNS)


def test_the_ground_of_a_striped_garment_is_its_commonest_colour_not_a_mix_of_its_shades():
    navy, pink = torch.tensor([-0.6, -0.5, -0.2]), torch.tensor([0.9, 0.2, 0.5])
    x = torch.full((1, 3, 40, 40), 0.95)  # a light backdrop
    rows = [navy, navy, 0.75 * navy + 0.25 * pink, pink, 0.25 * navy + 0.75 * pink]  # 2 ground, 3 blurred stripe rows
    for r in range(8, 33):
        x[0, :, r, 8:32] = rows[r % 5][:, None]
    assert torch.allclose(ground_colour(x)[0], navy, atol=1e-6)  # a median over the garment: a navy-pink mix
    rendered = render_product(spec_with("stripes", seed=5), size=96)
    solid = render_product(spec_with("solid", seed=5), size=96)
    assert (ground_colour(to_tensor(rendered, 0)) - ground_colour(to_tensor(solid, 0))).abs().max() < 0.15
    assert torch.equal(ground_colour(torch.full((2, 3, 8, 8), 0.3)), torch.full((2, 3), 0.3))  # no garment


def test_a_pattern_tagunet_starts_as_the_identity_and_its_print_blend_gives_the_house_print():
    net = pattern_net()
    x = torch.full((2, 3, 32, 32), 0.9)
    x[:, :, 8:28, 8:24] = torch.tensor([-0.6, -0.5, -0.2])[None, :, None, None]  # a navy garment on a light backdrop
    c = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # floral, stripes
    with torch.no_grad():
        assert torch.equal(net(x, c), x)
        net.out.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 1.0]))
        printed = net(x, c)
    expected = house_print(ground_colour(x), c, PATTERNS, 32, 32)
    assert torch.allclose(printed, expected, atol=1e-6)
    assert torch.allclose(ground_colour(x), torch.tensor([-0.6, -0.5, -0.2]).expand(2, 3))
    light = print_colour(ground_colour(x))[0]
    floral = house_alpha("floral", 32, 32) > 0.99
    assert torch.allclose(printed[0][:, floral], light[:, None].expand(-1, int(floral.sum())), atol=1e-6)
    assert TagUnet(c_dim=3, ngf=8, levels=2).out.out_channels == 5  # a shape-style TagUnet is unchanged


def test_a_saved_pattern_editor_reloads_to_the_same_function(tmp_path):
    torch.manual_seed(0)
    net = pattern_net()
    with torch.no_grad():
        for p in net.parameters():  # fp16 values, as the file stores them
            p.copy_((p + 0.05 * torch.randn_like(p)).half().float())
    path = save(Editor("pattern", net.eval(), 32, PATTERN_LAYOUT, "pattern"), tmp_path / "pattern.safetensors")
    loaded = gan.load(path)
    x = to_tensor(render_product(spec_with("solid"), size=32), 0)
    c = torch.tensor([[0.0, 1.0, 0.0]])
    with torch.no_grad():
        assert torch.allclose(loaded.net(x, c), net(x, c), atol=1e-5)
        directions = pattern_editors(loaded)
        assert sorted(directions) == ["floral_add", "floral_remove", "stripes_add", "stripes_remove"]
        assert torch.allclose(directions["floral_add"].net(x), FixedTags(net, [0.0, 1.0, 0.0])(x), atol=1e-5)


def test_a_short_training_moves_a_pattern_edit_towards_its_house_print_truth():
    torch.manual_seed(0)
    batch = pattern_batch(synth_world(), range(4), np.random.default_rng(0), 64)
    x, y, c = batch["x"], batch["y"], batch["c_trg"]
    net = pattern_net()
    optimizer = torch.optim.Adam(net.parameters(), 3e-3)
    for _ in range(120):
        loss = paired_l1(net(x, c), y, x, 10.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        fake = net(x, c)
    assert (fake - y).abs().mean() < 0.5 * (x - y).abs().mean()
