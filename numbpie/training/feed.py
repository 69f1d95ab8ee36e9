"""Endless training products for the embedder: rendered in a separate process, fed through a queue.

Each item is a *group*: a new synthetic product and a sibling that differs in exactly one
attribute (sleeves, fit, neckline, length, pattern or colour). Siblings in one batch are the
hardest negatives the world has, so the embedder must see shape as well as colour. Every
product comes as a product shot, a street crop (a full street scene rendered around it, cut
at its box with each edge moved at random, as a detector's box differs from the true one)
and sometimes a model shot.

The street renderer is the slow part, so it runs in its own process and the network never
waits: the trainer takes whatever groups are ready and reuses a bounded pool of them.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import queue
from collections import deque
from dataclasses import dataclass

import numpy as np
from PIL import Image

from numbpie.attributes import ATTRIBUTES, applies_to
from numbpie.boxes import crop_around
from numbpie.synth import TRAIN_SEEDS, random_spec, render_model, render_product, render_street

__all__ = ["Feed", "Product", "detector_like", "render_group"]

VARIED = ("sleeve_length", "fit", "neckline", "length", "pattern", "color")


@dataclass
class Product:
    """One training product: its views, its tags and the group it belongs to."""

    key: str
    group: str
    tags: dict[str, str]
    shot: Image.Image
    queries: list[Image.Image]  # street crops and model shots: what a shopper photographs


def _shrink(picture: Image.Image, side: int) -> Image.Image:
    picture = picture.copy()
    picture.thumbnail((side, side), Image.BILINEAR)
    return picture


def sibling(spec, rng: np.random.Generator):
    """`spec` with one attribute that applies to it changed to another value."""
    names = [n for n in VARIED if applies_to(n, spec.category)]
    name = names[rng.integers(len(names))]
    value = str(rng.choice([v for v in ATTRIBUTES[name] if v != getattr(spec, name)]))
    return dataclasses.replace(spec, **{name: value})


def detector_like(box, rng: np.random.Generator, spread: float = 0.12) -> tuple[float, ...]:
    """`box` with each edge moved independently by up to `spread` of the box's size, as a
    detector's box differs from the true one (the bundled detector's mean IoU is ~0.75)."""
    size = np.tile(np.asarray(box[2:], float) - np.asarray(box[:2], float), 2)
    return tuple(float(v) for v in np.asarray(box, float) + size * rng.uniform(-spread, spread, 4))


def _views(spec, rng: np.random.Generator, side: int) -> tuple[Image.Image, list[Image.Image]]:
    shot = _shrink(render_product(spec, size=side), side)
    others = [random_spec(int(rng.integers(*TRAIN_SEEDS)))] if rng.random() < 0.25 else []
    photo, boxes = render_street(spec, int(rng.integers(2**31)), others=others)
    queries = [_shrink(crop_around(photo, detector_like(boxes[0], rng), 0.1), side)]
    if rng.random() < 0.3:
        queries.append(_shrink(render_model(spec, size=side * 2), side))
    return shot, queries


def render_group(seed: int, side: int = 160) -> list[Product]:
    """A new product (random_spec seed in TRAIN_SEEDS) and one sibling, each with its views."""
    rng = np.random.default_rng(seed)
    base = random_spec(int(rng.integers(*TRAIN_SEEDS)))
    out = []
    for n, spec in enumerate((base, sibling(base, rng))):
        shot, queries = _views(spec, rng, side)
        tags = {"category": spec.category, **spec.attributes}
        out.append(Product(f"f{seed}.{n}", f"f{seed}", tags, shot, queries))
    return out


def _render_forever(seed: int, side: int, out: multiprocessing.Queue) -> None:
    import os

    os.nice(5)  # the trainers come first; the pool of groups covers the gaps
    parent, count = os.getppid(), 0
    while os.getppid() == parent:  # a trainer killed without closing its feed leaves no orphan behind
        group = render_group(int(np.random.SeedSequence([seed, count]).generate_state(1)[0]), side)
        while os.getppid() == parent:
            try:
                out.put(group, timeout=5)
                break
            except queue.Full:
                continue
        count += 1


class Feed:
    """A renderer process and a bounded pool of the groups it made, newest replacing oldest."""

    def __init__(self, seed: int, side: int = 160, pool: int = 3000, workers: int = 1):
        context = multiprocessing.get_context("fork")
        self._queue = context.Queue(maxsize=64)
        self._workers = [context.Process(target=_render_forever, args=(seed * 1000 + n, side, self._queue),
                                         daemon=True) for n in range(workers)]
        for worker in self._workers:
            worker.start()
        self.groups: deque[list[Product]] = deque(maxlen=pool)
        self.rendered = 0

    def collect(self, wait_for: int = 0) -> int:
        """Move finished groups into the pool (waiting until it holds `wait_for`); returns its size."""
        while True:
            try:
                block = len(self.groups) < wait_for
                self.groups.append(self._queue.get(block=block, timeout=600 if block else None))
                self.rendered += 1
            except queue.Empty:
                return len(self.groups)

    def close(self) -> None:
        for worker in self._workers:
            worker.terminate()
