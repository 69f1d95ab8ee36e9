"""Shared fixtures: small generated image folders and a random-weights embedder."""

from __future__ import annotations

import numpy as np
import pytest
import torchvision  # noqa: F401  (before any TensorFlow import: see detector/_tf.py)
from PIL import Image, ImageDraw


def make_image(seed: int, size=(96, 128)) -> Image.Image:
    """A distinct, deterministic picture: coloured shapes on a tinted background."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", size, tuple(int(c) for c in rng.integers(150, 255, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        x0, y0 = rng.integers(0, size[0] // 2), rng.integers(0, size[1] // 2)
        x1, y1 = x0 + rng.integers(10, size[0] // 2), y0 + rng.integers(10, size[1] // 2)
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    return image


@pytest.fixture
def image_tree(tmp_path):
    """root/<category>/<product>.jpg with 6 tops and 6 dresses."""
    root = tmp_path / "shop"
    for n in range(12):
        category = "top" if n % 2 else "dress"
        folder = root / category
        folder.mkdir(parents=True, exist_ok=True)
        make_image(n).save(folder / f"item_{n:02d}.jpg", quality=95)
    return root


@pytest.fixture(scope="session")
def random_embedder():
    """The seeded random Inception-V3 stand-in (real network, untrained weights)."""
    from numbpie import embedder

    return embedder.load("random", batch_size=8)


@pytest.fixture
def indexed_folder(tmp_path, image_tree):
    """`indexed_folder(embedder)`: a catalog folder of `image_tree`, indexed by `embedder`."""
    from numbpie.app.indexer import index_catalog, open_catalog
    from numbpie.catalog import import_folder

    def build(embedder):
        folder = tmp_path / "c"
        import_folder(open_catalog(folder), image_tree)
        index_catalog(folder, embedder)
        return folder
    return build
