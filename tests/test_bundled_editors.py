"""The GAN editors bundled in weights/: registered, loadable, and they change what they are asked to."""

import numpy as np

from gan.editor import DIRECTIONS
from numbpie import weights
from numbpie.app import assemble
from numbpie.attributes import SHAPE_ATTRIBUTES
from gan.prints import true_edit
from numbpie.synth import random_spec, render_product

HELD_OUT = range(2**30, 2**30 + 6)  # product seeds outside every training range


def test_every_bundled_editor_is_registered_with_its_checksum_and_loads():
    names = weights.names("gan")
    roles = {weights.entry("gan", n).get("role") for n in names}
    assert {"stargan", "pix2pix"} <= roles
    assert "pattern" in roles or {f"cyclegan:{d}" for d in DIRECTIONS} <= roles  # one pattern TagUnet, or four
    for name in names:
        if weights.entry("gan", name).get("role"):
            path, item = weights.resolve("gan", name)  # checks the pinned sha256
            assert path.stat().st_size == item["size"]

    editor = assemble.bundled_editor()
    assert set(SHAPE_ATTRIBUTES) <= {a for e in editor.stargan for a in e.attributes}
    assert set(editor.cyclegan) == set(DIRECTIONS) and editor.pix2pix is not None


def test_a_bundled_edit_changes_the_garment_and_keeps_the_background():
    spec = random_spec(7, "top")
    image = render_product(spec)
    current = {"category": spec.category, **spec.attributes}
    target = "long" if spec.sleeve_length != "long" else "sleeveless"
    result = assemble.bundled_editor().edit(image, {"sleeve_length": target}, current=current)

    before, after = (np.asarray(im, np.float32) for im in (image, result.image))
    assert result.image.size == image.size and [name for name, _ in result.steps] == ["crop", "shape"]
    assert np.abs(after - before).mean() > 1.0  # something was painted
    corner = (slice(0, 24), slice(0, 24))  # studio background, far from any sleeve
    assert np.abs(after[corner] - before[corner]).mean() < 3.0


def _distance(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())


def _moves_towards_the_truth(tags_for) -> tuple[float, float]:
    """Mean L1 to the true edit of the bundled edit and of the unedited input, over held-out products."""
    editor = assemble.bundled_editor()
    edited_gap, input_gap = [], []
    for seed in HELD_OUT:
        spec = random_spec(seed)
        image = render_product(spec)
        tags = tags_for(spec)
        result = editor.edit(image, tags, current={"category": spec.category, **spec.attributes})
        truth = true_edit(spec, tags, image.width, source=image)
        edited_gap.append(_distance(result.image, truth))
        input_gap.append(_distance(image, truth))
    return float(np.mean(edited_gap)), float(np.mean(input_gap))


def test_a_bundled_shape_edit_moves_the_garment_towards_the_true_edit():
    edited, unedited = _moves_towards_the_truth(
        lambda spec: {"sleeve_length": "long" if spec.sleeve_length != "long" else "short"})
    assert edited < 0.8 * unedited


def test_a_bundled_pattern_edit_moves_the_garment_towards_the_house_print():
    edited, unedited = _moves_towards_the_truth(
        lambda spec: {"pattern": "stripes" if spec.pattern != "stripes" else "floral"})
    assert edited < 0.9 * unedited


def test_the_bundled_model_view_dresses_a_model_in_the_garment():
    spec = random_spec(2**30 + 1, "dress")
    image = render_product(spec)
    result = assemble.bundled_editor().edit(image, {}, current={"category": spec.category, **spec.attributes},
                                            model_view=True)
    assert [name for name, _ in result.steps][-1] == "model"
    assert result.image.size == image.size and _distance(result.image, image) > 5.0  # a new picture, not the input
