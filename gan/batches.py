"""Training data for the GANs, rendered on the fly from numbpie.synth: exact pairs of one edit.

Every batch is a function of its numpy generator, which the trainer seeds with the step, so a
resumed run sees exactly the data an unbroken one would.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image

from numbpie.attributes import ATTRIBUTES, SHAPE_ATTRIBUTES, applies_to
from numbpie.errors import TrainingError
from numbpie.synth.dataset import TRAIN_SEEDS

from .editor import SHAPE_LAYOUT, encode_label, to_tensor
from .prints import true_edit

__all__ = [
    "PATTERN_LAYOUT",
    "SAMPLE_COUNT",
    "TRAIN_SEEDS",
    "cyclegan_batch",
    "data_seeds",
    "pattern_batch",
    "pix2pix_batch",
    "stargan_batch",
    "synth_world",
    "validation_seeds",
]

SAMPLE_COUNT = 6  # products per sample grid
PATTERN_LAYOUT = (("pattern", ATTRIBUTES["pattern"]),)


def synth_world() -> SimpleNamespace:
    """The renderer: numbpie.synth's random_spec, render_product and render_model, and the true edit (gan.prints)."""
    from numbpie.synth import random_spec, render_model, render_product

    return SimpleNamespace(
        random_spec=random_spec, render_product=render_product, render_model=render_model, true_edit=true_edit
    )


def data_seeds(data: str) -> tuple[np.ndarray | None, list[int]]:
    """Training seeds for `--data` (None: all of TRAIN_SEEDS) and held-out seeds to show."""
    if data == "synth":
        return None, list(range(SAMPLE_COUNT))
    path = Path(data) / "catalog.sqlite"
    if not path.is_file():
        raise TrainingError(
            f"--data {data}: not a folder written by `python -m numbpie synth` (no catalog.sqlite); "
            "pass one, or --data synth."
        )
    from numbpie.catalog import Catalog

    catalog = Catalog(path)
    products = list(catalog)
    catalog.close()
    seeds = {
        name: [int(p.metadata["seed"]) for p in products if p.metadata.get("split") == name]
        for name in ("train", "test")
    }
    if not seeds["train"]:
        raise TrainingError(f"--data {data}: its catalog has no 'train' split to learn from.")
    return np.array(seeds["train"]), (seeds["test"] or seeds["train"])[:SAMPLE_COUNT]


def _stack(images: list[Image.Image], size: int) -> torch.Tensor:
    return torch.cat([to_tensor(image, size) for image in images])


def _tags(spec) -> dict[str, str]:
    return {"category": spec.category, **spec.attributes}


def stargan_batch(world, seeds, rng: np.random.Generator, size: int, keep: float = 0.0) -> dict[str, torch.Tensor]:
    """Products, the same products with one shape attribute changed, and both label vectors.

    With `keep` > 0, that share of the pairs is left unchanged (target = current).
    """
    x, y, c_org, c_trg = [], [], [], []
    for seed in seeds:
        spec = world.random_spec(int(seed))
        names = [a for a in SHAPE_ATTRIBUTES if applies_to(a, spec.category)]
        name = names[rng.integers(len(names))]
        value = str(rng.choice([v for v in ATTRIBUTES[name] if v != getattr(spec, name)]))
        edited = spec if keep and rng.random() < keep else dataclasses.replace(spec, **{name: value})
        x.append(world.render_product(spec, size=size))
        y.append(world.render_product(edited, size=size))
        c_org.append(encode_label(_tags(spec), SHAPE_LAYOUT))
        c_trg.append(encode_label(_tags(edited), SHAPE_LAYOUT))
    return {
        "x": _stack(x, size),
        "y": _stack(y, size),
        "c_org": torch.tensor(c_org),
        "c_trg": torch.tensor(c_trg),
    }


def cyclegan_batch(world, seeds, rng, size: int, pattern: str) -> dict[str, torch.Tensor]:
    """The same products plain (domain A) and with `pattern` (domain B)."""
    specs = [world.random_spec(int(seed)) for seed in seeds]
    plain = [
        world.render_product(dataclasses.replace(s, pattern="solid"), size=size) for s in specs
    ]
    patterned = [
        world.render_product(dataclasses.replace(s, pattern=pattern), size=size) for s in specs
    ]
    return {"a": _stack(plain, size), "b": _stack(patterned, size)}


def pix2pix_batch(world, seeds, rng, size: int) -> dict[str, torch.Tensor]:
    """Product shots and the same products worn by a model."""
    specs = [world.random_spec(int(seed)) for seed in seeds]
    products = [world.render_product(s, size=size) for s in specs]
    models = [world.render_model(s, size=size) for s in specs]
    return {"x": _stack(products, size), "y": _stack(models, size)}




def pattern_batch(world, seeds, rng: np.random.Generator, size: int) -> dict[str, torch.Tensor]:
    """Products, the same products after a pattern edit (`world.true_edit`: the house prints), and the target.

    One pair in eight keeps its pattern (target = current), so the editor learns to leave a
    garment alone when nothing is asked.
    """
    x, y, c_trg = [], [], []
    for seed in seeds:
        spec = world.random_spec(int(seed))
        same = rng.random() < 0.125
        value = spec.pattern if same else str(rng.choice([v for v in ATTRIBUTES["pattern"] if v != spec.pattern]))
        source = world.render_product(spec, size=size)
        x.append(source)
        y.append(world.true_edit(spec, {"pattern": value}, size=size, source=source))
        c_trg.append(encode_label({"pattern": value}, PATTERN_LAYOUT))
    return {"x": _stack(x, size), "y": _stack(y, size), "c_trg": torch.tensor(c_trg)}


def validation_seeds(count: int = 48) -> np.ndarray:
    """Product seeds outside TRAIN_SEEDS (and outside datasets' first ids) for held-out figures."""
    return np.arange(2**30, 2**30 + count)
