"""Train the attribute tagger on a synth dataset: product shots, model shots and street crops.

Cross-entropy per attribute (length only for dresses), AdamW with a cosine schedule, on the
shared loop (resume, `--init bundled`, bf16, val-best weights in <out>/best/). A share of each
batch (`--fresh`) is new product shots rendered on the fly, never in any dataset; another
(`--street`) is street crops and model shots of new products from the embedder's renderer
process (`numbpie.training.feed`), since street crops of 1,200 products are learnt by heart;
`--camera` of the fresh shots are street-sized and pass through the street photos' camera.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageEnhance, ImageFilter
from safetensors.torch import save_file

from numbpie import weights
from numbpie.embedder import to_batch
from numbpie.synth.splits import split_views
from numbpie.tagger import IGNORE, INPUT_SIZE, MEAN, STD, WIDTHS, Tagger, TaggerNet, accuracy, label_targets, load
from numbpie.training import loop
from numbpie.training.feed import Feed
from numbpie.training.torch_state import (
    autocast,
    load_modules,
    load_optimizers,
    module_state,
    optimizer_state,
    prepare,
)

__all__ = ["TaggerOptions", "TaggerTask", "add_arguments", "evaluate", "fresh_products", "labelled_views", "main",
           "street_like"]

EXPORT_NAME = "tagger.safetensors"  # in the run's best/ folder


@dataclass
class TaggerOptions(loop.LoopOptions):
    data: str = ""
    out: str = "runs/tagger"
    steps: int = 1500
    input_size: int = INPUT_SIZE
    batch_size: int = 64
    lr: float = 3e-3
    fresh: float = 0.0  # share of each batch rendered on the fly: new product shots
    camera: float = 0.0  # share of those fresh shots at a street photo's scale, through its camera
    street: float = 0.0  # share of each batch from the renderer process: street crops and model shots
    pool: int = 3000  # rendered products kept for reuse by --street
    widths: str = ",".join(map(str, WIDTHS))  # channels of each trunk stage
    checkpoint_every: int = 100
    eval_every: int = 250

    HELP = {"fresh": "share of each batch that is new product shots rendered on the fly",
            "camera": "share of the fresh shots rendered at a street garment's size (64-160 px) and passed "
                      "through the street photos' camera: lighting, colour cast, blur, noise, JPEG",
            "street": "share of each batch that is street crops and model shots of new products, "
                      "rendered in a separate process (used once it holds 4 batches' worth)",
            "pool": "rendered products kept for reuse by --street",
            "widths": "channels of each trunk stage, comma-separated (--init copies the tensors whose shapes match)",
            "init": "'bundled' or a tagger file to start from when --out has no checkpoint"}


def _tags(product) -> dict[str, str]:
    return {"category": product.category, **product.attributes}


def labelled_views(data: Path, split: str, size: int = INPUT_SIZE) -> tuple[list[Image.Image], list[dict]]:
    """Every view of the split's products (shrunk to ~1.25x `size`) with its attribute labels."""
    views = split_views(Path(data), split, size, margin=0.1)
    return [view for view, _, _ in views], [_tags(product) for _, product, _ in views]


def fresh_products(rng: random.Random, count: int, size: int,
                   camera: float = 0.0) -> tuple[list[Image.Image], list[dict]]:
    """`count` product shots of new synthetic garments (seeds in TRAIN_SEEDS) and their labels.

    A share `camera` of them look like a street photo's garment: small and through its camera.
    """
    from numbpie.synth import TRAIN_SEEDS, random_spec, render_product

    specs = [random_spec(rng.randrange(*TRAIN_SEEDS)) for _ in range(count)]
    # camera 0 draws nothing more from rng, so runs without --camera see the batches they saw before it
    shots = [street_like(spec, rng) if camera and rng.random() < camera
             else render_product(spec, size=round(size * 1.25)) for spec in specs]
    return shots, [{"category": spec.category, **spec.attributes} for spec in specs]


def street_like(spec, rng: random.Random) -> Image.Image:
    """A product shot at a street garment's size (64-160 px) through the street photos' camera.

    Street crops of striped garments are where the tagger misreads colour: stripes a pixel or two
    wide, blurred and lit by a cast. The street renderer makes a few such crops a second; this
    makes them from product shots in ~10 ms, with the same camera, so the colour label still holds.
    """
    from numbpie.synth import render_product
    from numbpie.synth.street import camera

    shot = render_product(spec, size=rng.randint(64, 160))
    return camera(np.asarray(shot, np.float32) / 255.0, np.random.default_rng(rng.randrange(2**32)))


def augment(picture: Image.Image, rng: random.Random) -> Image.Image:
    """A random crop (85-100%), flip and slight blur; no lighting change, since colour is a label."""
    w, h = picture.size
    cw, ch = round(w * rng.uniform(0.85, 1.0)), round(h * rng.uniform(0.85, 1.0))
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    out = picture.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < 0.2:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8)))
    return ImageEnhance.Contrast(out).enhance(rng.uniform(0.95, 1.05))


def evaluate(data: str | Path, tagger: Tagger, split: str = "test") -> dict[str, float]:
    """Per-attribute accuracy on the split's product shots and, separately, its street crops."""
    views = split_views(Path(data), split, tagger.input_size, margin=0.1)
    out = {}
    for kind in ("product", "street"):
        mine = [(view, _tags(product)) for view, product, found in views if found == kind]
        scores = accuracy(tagger, [view for view, _ in mine], [tags for _, tags in mine])
        out.update({f"{kind}/{name}": value for name, value in scores.items()})
    return out


def tagger_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum over attributes of the cross-entropy, ignoring attributes that do not apply."""
    total = 0.0
    for name, logits in outputs.items():
        if (targets[name] != IGNORE).any():
            total = total + F.cross_entropy(logits.float(), targets[name], ignore_index=IGNORE)
    return total


class TaggerTask:
    """The tagger's model, data and loss for `loop.train`."""

    def __init__(self, options: TaggerOptions, feed: Feed | None = None):
        self.options, self.feed = options, feed
        self.precision = loop.resolve_precision(options.precision)
        self.batch_size = options.batch_size
        widths = tuple(int(w) for w in options.widths.split(","))
        self.fixed = {"input_size": options.input_size, "arch": "tagger", "widths": list(widths)}
        self.model = prepare(TaggerNet(widths).train(), self.precision)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=options.lr, weight_decay=1e-4, fused=True)
        self.views, self.labels = labelled_views(Path(options.data), "train", options.input_size)
        self._val = None

    def state(self) -> dict[str, np.ndarray]:
        return {**module_state({"model": self.model}), **optimizer_state({"adamw": self.optimizer})[0]}

    def extra(self) -> dict:
        return {"param_groups": optimizer_state({"adamw": self.optimizer})[1]}

    def load_state(self, tensors, extra) -> None:
        load_modules({"model": self.model}, tensors)
        load_optimizers({"adamw": self.optimizer}, tensors, extra["param_groups"])

    def init_from(self, source: str) -> None:
        """Start from `source`'s weights; with a deeper trunk, the new stage and the heads start fresh."""
        own = self.model.state_dict()
        given = {k: v for k, v in load(source).model.state_dict().items() if k in own and own[k].shape == v.shape}
        if "trunk.0.0.weight" not in given:
            raise weights.WeightsError(f"{source} does not share this tagger's first stage "
                                       f"(--widths {self.options.widths}).")
        self.model.load_state_dict(given, strict=False)

    def train_step(self, step: int) -> dict[str, float]:
        rng = random.Random(self.options.seed * 1_000_003 + step)
        fresh = round(self.batch_size * self.options.fresh)
        images, targets = self._street_views(rng)
        picks = rng.sample(range(len(self.views)), min(self.batch_size - fresh - len(images), len(self.views)))
        shots, labels = fresh_products(rng, fresh, self.options.input_size, self.options.camera)
        images, targets = images + shots, targets + labels
        images += [self.views[i] for i in picks]
        targets += [self.labels[i] for i in picks]
        batch = torch.from_numpy(to_batch([augment(image, rng) for image in images], self.options.input_size, MEAN, STD))
        if self.precision == "bf16":
            batch = batch.contiguous(memory_format=torch.channels_last)
        for group in self.optimizer.param_groups:
            group["lr"] = self.options.lr * loop.lr_factor(step, self.options.steps)
        with autocast(self.precision):
            loss = tagger_loss(self.model(batch), label_targets(targets))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item(), "pool": float(len(self.feed.groups) if self.feed else 0)}

    def _street_views(self, rng: random.Random) -> tuple[list[Image.Image], list[dict]]:
        """`--street` of a batch: street crops and model shots of rendered products (none until the pool fills)."""
        count = round(self.batch_size * self.options.street)
        if self.feed is None or self.feed.collect() < 4 * count:  # not a handful of products over and over
            return [], []
        products = [rng.choice(rng.choice(self.feed.groups)) for _ in range(count)]
        return [rng.choice(p.queries) for p in products], [p.tags for p in products]

    def evaluate(self) -> dict[str, float]:
        """Accuracy per attribute on the val split; the score is the mean over attributes and views."""
        self.model.eval()
        try:
            figures = evaluate(self.options.data, Tagger(self.model, input_size=self.options.input_size), "val")
        finally:
            self.model.train()
        return {**figures, "score": float(np.nanmean(list(figures.values())))}

    def export(self, folder: Path) -> None:
        """The weights as fp16 safetensors with the input size (what `tagger.load` reads)."""
        state = {k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous()
                 for k, v in self.model.state_dict().items()}
        save_file(state, str(folder / EXPORT_NAME), {"input_size": str(self.options.input_size)})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    loop.add_arguments(parser, TaggerOptions())


def main(args: argparse.Namespace) -> int:
    """Train (or resume) the tagger; print the val accuracy; copy the best weights to --export."""
    options = loop.options_from(args, TaggerOptions)
    torch.set_num_threads(options.threads)
    torch.manual_seed(options.seed)
    side = round(options.input_size * 1.25)  # as labelled_views shrinks the dataset's views
    feed = (Feed(options.seed + loop.checkpoint_step(options.out), side=side, pool=options.pool)
            if options.street > 0 else None)
    try:
        loop.train(TaggerTask(options, feed), options)
    finally:
        if feed:
            feed.close()
    best = json.loads((Path(options.out) / "best.json").read_text())
    print("best val accuracy " + json.dumps({k: round(v, 4) for k, v in best.items() if isinstance(v, float)}))
    if args.export:
        shutil.copyfile(Path(options.out) / "best" / EXPORT_NAME, args.export)
        print(f"exported {args.export}")
    return 0
