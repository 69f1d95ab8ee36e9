"""The GAN editors bundled in weights/: registered, loadable, and they change what they are asked to."""

import numpy as np

from gan.editor import DIRECTIONS
from numbpie import weights
from numbpie.app import assemble
from numbpie.attributes import SHAPE_ATTRIBUTES
from numbpie.synth import random_spec, render_product


def test_every_bundled_editor_is_registered_with_its_checksum_and_loads():
    names = weights.names("gan")
    roles = {weights.entry("gan", n).get("role") for n in names}
    assert {"stargan", "pix2pix"} | {f"cyclegan:{d}" for d in DIRECTIONS} <= roles
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
