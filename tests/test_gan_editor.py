"""gan.editor: label encoding, pattern plans, and StyleEditor.edit on tiny random generators."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from gan.editor import (
    FASHION_GAN_LABELS,
    SHAPE_LAYOUT,
    Editor,
    StyleEditor,
    encode_label,
    keep_detail,
    pattern_plan,
    to_image,
    to_tensor,
)
from gan.models import Generator, ResnetGenerator, UnetGenerator


def garment(seed=0, size=(40, 48)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


class Recorder(nn.Module):
    """A stand-in generator that logs its calls and paints a constant grey."""

    def __init__(self, log, name, value, c_dim=None):
        super().__init__()
        self.log, self.name, self.value, self.c_dim = log, name, value, c_dim

    def forward(self, x, c=None):
        self.log.append((self.name, None if c is None else c.tolist()[0]))
        return torch.full_like(x, self.value)


def recording_editor(log):
    """A StyleEditor whose every generator is a Recorder."""
    cyclegan = {
        d: Editor("cyclegan", Recorder(log, d, v), 16, name=d)
        for d, v in zip(
            ("floral_add", "floral_remove", "stripes_add", "stripes_remove"),
            (-0.5, 0.0, 0.5, 1.0),
            strict=True,
        )
    }
    return StyleEditor(
        stargan=Editor("stargan", Recorder(log, "stargan", -1.0, c_dim=13), 16, SHAPE_LAYOUT),
        cyclegan=cyclegan,
        pix2pix=Editor("pix2pix", Recorder(log, "pix2pix", 0.25), 32),
    )


def tiny_editor(seed=0):
    """A StyleEditor with real, randomly initialised, tiny generators."""
    torch.manual_seed(seed)
    stargan = Editor("stargan", Generator(8, 13, 1).eval(), 16, SHAPE_LAYOUT)
    cyclegan = {"floral_add": Editor("cyclegan", ResnetGenerator(ngf=4, n_blocks=1).eval(), 16)}
    pix2pix = Editor("pix2pix", UnetGenerator(num_downs=5, ngf=4).eval(), 32)
    return StyleEditor(stargan=stargan, cyclegan=cyclegan, pix2pix=pix2pix)


TOP = {
    "category": "top",
    "sleeve_length": "short",
    "fit": "normal",
    "neckline": "round",
    "pattern": "solid",
}


def test_tensor_round_trip_keeps_pixels():
    image = garment(size=(16, 16))
    x = to_tensor(image, 16)
    assert x.shape == (1, 3, 16, 16) and x.min() >= -1 and x.max() <= 1
    assert np.array_equal(np.asarray(to_image(x[0])), np.asarray(image))
    assert to_image(x[0], (40, 30)).size == (40, 30)


def test_keep_detail_returns_the_full_size_input_where_the_generator_changes_nothing():
    image = garment(size=(40, 48))
    x = to_tensor(image, 16)
    assert np.array_equal(np.asarray(keep_detail(image, x, x.clone())), np.asarray(image))


def test_keep_detail_adds_the_upsampled_change():
    image = Image.new("RGB", (40, 48), (100, 100, 100))
    x = to_tensor(image, 16)
    y = x.clone()
    y[:, 0, :8] += 0.5  # brighten the red channel of the top half by 0.5 * 127.5
    out = np.asarray(keep_detail(image, x, y)).astype(int)
    assert out.shape == (48, 40, 3)
    assert abs(out[2, 20, 0] - 164) <= 1 and out[45, 20, 0] == 100 and (out[..., 1] == 100).all()


def test_keep_detail_drops_the_inputs_fine_detail_where_the_generator_repaints():
    """A removed print or sleeve must not show through: the bug behind faded stripes and pale outlines."""
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, ::4] = stripes[:, 1::4] = 255  # 2 px stripes: finer than the generator's 16 px input
    image = Image.fromarray(stripes)
    x = to_tensor(image, 16)
    y = x.clone()
    y[:, :, :, :8] = torch.tensor([0.6, -0.6, -0.6])[:, None, None]  # the left half repainted red
    out = np.asarray(keep_detail(image, x, y)).astype(int)
    repainted, kept = out[:, :26], out[:, 38:]
    assert repainted.std(axis=(0, 1)).max() < 8  # one flat red, no stripes showing through
    assert abs(repainted[..., 0].mean() - 204) < 4 and repainted[..., 1].mean() < 55
    assert np.array_equal(kept, stripes[:, 38:])  # untouched where nothing changed


def test_encode_label_concatenates_one_hot_groups_and_zeros_length_for_tops():
    vector = encode_label({**TOP, "fit": "loose"}, SHAPE_LAYOUT)
    expected = [0, 1, 0, 0] + [0, 0, 1] + [1, 0, 0] + [0, 0, 0]
    assert vector == expected


def test_encode_label_uses_the_fashion_gan_order():
    layout = (("sleeve_length", FASHION_GAN_LABELS["sleeve_length"]),)
    assert encode_label({"sleeve_length": "sleeveless"}, layout) == [0, 0, 0, 1]


def test_encode_label_needs_every_applicable_attribute():
    with pytest.raises(ValueError, match="current length"):
        encode_label({**TOP, "category": "dress"}, SHAPE_LAYOUT)


@pytest.mark.parametrize(
    "target, current, plan",
    [
        (None, "floral", []),
        ("floral", "floral", []),
        ("floral", "solid", ["floral_add"]),
        ("stripes", None, ["stripes_add"]),
        ("solid", "floral", ["floral_remove"]),
        ("solid", "stripes", ["stripes_remove"]),
        ("stripes", "floral", ["floral_remove", "stripes_add"]),
        ("floral", "stripes", ["stripes_remove", "floral_add"]),
    ],
)
def test_pattern_plan(target, current, plan):
    assert pattern_plan(target, current) == plan


def test_removing_an_unknown_pattern_is_an_error():
    with pytest.raises(ValueError, match="current pattern"):
        pattern_plan("solid", None)


def test_edit_runs_shape_then_pattern_then_model_view():
    log = []
    image = garment()
    result = recording_editor(log).edit(
        image,
        {"fit": "loose", "pattern": "stripes"},
        model_view=True,
        current={**TOP, "pattern": "floral"},
    )

    assert [name for name, _ in log] == ["stargan", "floral_remove", "stripes_add", "pix2pix"]
    assert log[0][1] == [0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
    assert [name for name, _ in result.steps] == ["crop", "shape", "pattern", "model"]
    assert result.steps[0][1] is not None and np.array_equal(
        np.asarray(result.steps[0][1]), np.asarray(image)
    )
    assert all(step.size == image.size for _, step in result.steps)
    # stargan paints -1: the edit darkens the garment, keeping only its fine detail
    assert np.asarray(result.steps[1][1]).mean() < 0.5 * np.asarray(image).mean()
    assert result.image is result.steps[-1][1]
    assert np.asarray(result.image).mean() == pytest.approx(0.625 * 255, abs=1)


def test_tags_equal_to_the_current_ones_change_nothing():
    log = []
    image = garment()
    result = recording_editor(log).edit(image, {"fit": "normal", "pattern": "solid"}, current=TOP)
    assert log == []
    assert [name for name, _ in result.steps] == ["crop"]
    assert np.array_equal(np.asarray(result.image), np.asarray(image))


def test_the_tagger_supplies_current_tags():
    log = []
    editor = recording_editor(log)
    editor.tagger = lambda image: {**TOP, "pattern": "stripes"}
    editor.edit(garment(), {"pattern": "solid"})
    assert [name for name, _ in log] == ["stripes_remove"]


@pytest.mark.parametrize(
    "tags, message",
    [
        ({"sleeves": "long"}, "valid attributes are: category, sleeve_length"),
        ({"fit": "baggy"}, "valid values are: tight, normal, loose"),
        ({"length": "long"}, "dresses only"),
        ({"color": "red"}, "color cannot be edited"),
    ],
)
def test_bad_tags_are_clear_errors(tags, message):
    with pytest.raises(ValueError, match=message):
        recording_editor([]).edit(garment(), tags, current={**TOP, "color": "blue"})


def test_missing_editors_say_what_to_load():
    empty = StyleEditor()
    with pytest.raises(ValueError, match="need a StarGAN"):
        empty.edit(garment(), {"fit": "loose"}, current=TOP)
    with pytest.raises(ValueError, match="floral_add needs a CycleGAN"):
        empty.edit(garment(), {"pattern": "floral"}, current=TOP)
    with pytest.raises(ValueError, match="needs a pix2pix"):
        empty.edit(garment(), {}, model_view=True)
    only_fit = StyleEditor(
        stargan=Editor("stargan", Generator(8, 3, 1), 16, (("fit", FASHION_GAN_LABELS["fit"]),))
    )
    with pytest.raises(ValueError, match="No loaded StarGAN edits neckline"):
        only_fit.edit(garment(), {"neckline": "v"}, current=TOP)


def test_one_stargan_per_attribute_runs_once_per_changed_attribute():
    log = []
    editors = [
        Editor(
            "stargan",
            Recorder(log, name, 0.0, c_dim=len(FASHION_GAN_LABELS[name])),
            16,
            ((name, FASHION_GAN_LABELS[name]),),
        )
        for name in ("sleeve_length", "fit", "neckline")
    ]
    StyleEditor(stargan=editors).edit(
        garment(), {"neckline": "v", "sleeve_length": "long"}, current=TOP
    )
    assert log == [("sleeve_length", [0, 1, 0, 0]), ("neckline", [0, 1, 0])]


def test_unknown_cyclegan_direction_is_refused():
    with pytest.raises(ValueError, match="floral_add, floral_remove"):
        StyleEditor(cyclegan={"dots_add": None})


def test_edit_is_thread_safe_and_deterministic():
    editor = tiny_editor()
    images = [garment(seed) for seed in range(6)]
    tags = {"sleeve_length": "long", "pattern": "floral"}

    def run(image):
        return np.asarray(editor.edit(image, tags, model_view=True, current=TOP).image)

    expected = [run(image) for image in images]
    with ThreadPoolExecutor(max_workers=3) as pool:
        got = list(pool.map(run, images * 2))
    assert all(np.array_equal(a, b) for a, b in zip(got, expected * 2, strict=True))


def test_can_edit_says_which_edits_the_loaded_generators_make():
    editor = tiny_editor()
    assert editor.can_edit({"sleeve_length": "long"}, TOP)
    assert editor.can_edit({"pattern": "floral"}, TOP)
    assert not editor.can_edit({"pattern": "stripes"}, TOP)  # no stripes_add CycleGAN
    assert not editor.can_edit({"length": "long"}, TOP)  # a top has no length
    assert editor.has_model_view and not StyleEditor(stargan=editor.stargan).has_model_view


def test_a_stargan_label_comes_from_tags_or_a_vector_of_its_length():
    log = []
    editor = Editor("stargan", Recorder(log, "stargan", 0.0, c_dim=13), 16, SHAPE_LAYOUT)
    tags = {**TOP, "fit": "loose"}
    assert editor.label(tags).tolist() == [encode_label(tags, SHAPE_LAYOUT)]
    assert editor.label([1.0] * 13).shape == (1, 13)
    with pytest.raises(ValueError, match="takes a label of length 13, not 12"):
        editor.label([0.0] * 12)
    unlabelled = Editor("stargan", Recorder(log, "stargan", 0.0, c_dim=13), 16)
    with pytest.raises(ValueError, match="no label layout; pass a raw label vector"):
        unlabelled.label(tags)
    assert unlabelled.label([0.0] * 13).shape == (1, 13)  # a raw vector needs no layout
    with pytest.raises(ValueError, match="needs a target label"):
        editor.apply(garment())
    assert log == []  # refused before the generator ran
    assert editor.apply(garment(), tags).size == garment().size
    assert log == [("stargan", encode_label(tags, SHAPE_LAYOUT))]
    cyclegan = Editor("cyclegan", Recorder(log, "floral_add", 0.5), 16)
    assert cyclegan.apply(garment()).size == garment().size  # the other families take no label
    assert log[-1] == ("floral_add", None)
