"""Train the Inception-V3 embedder for street-to-shop retrieval: garments, not colours.

Each batch holds products in pairs of siblings (two products that differ in one attribute),
each product twice: its product shot (what the catalog indexes) and a query view (a street
crop, a model shot, or now and then the product shot again, as an edited garment is searched). The loss is symmetric InfoNCE between query views and product shots,
so every other product in the batch, the sibling above all, is a negative; plus one
cross-entropy head per attribute on the embedding, so sleeves and necklines weigh as much as
colour. Products come from the dataset's train split and, without end, from a renderer
process (`numbpie.training.feed`). The shared loop resumes from the run folder or starts
from `--init bundled`; validation is street-to-shop mAP on the dataset's val split.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageEnhance, ImageFilter
from safetensors.torch import save_file
from torch import nn

from numbpie import embedder as embedders
from numbpie.attributes import ATTRIBUTES
from numbpie.metrics import retrieval_metrics, score_gap
from numbpie.synth.splits import split_views
from numbpie.tagger import IGNORE, label_targets
from numbpie.training import loop
from numbpie.training.feed import Feed, Product
from numbpie.training.torch_state import (
    autocast,
    load_modules,
    load_optimizers,
    module_state,
    optimizer_state,
    prepare,
    rng_state,
    set_rng_state,
)

__all__ = ["EmbedderOptions", "EmbedderTask", "add_arguments", "augment", "main"]

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
EXPORT_NAME = "embedder.safetensors"  # in the run's best/ folder


@dataclass
class EmbedderOptions(loop.LoopOptions):
    data: str = ""
    out: str = "runs/embedder"
    steps: int = 20000
    input_size: int = 128
    groups: int = 16  # sibling pairs per batch: 4 images each
    lr: float = 5e-4
    scale: float = 20.0  # InfoNCE inverse temperature
    attribute_weight: float = 0.5
    shot_queries: float = 0.2  # share of query views that are the product shot itself, augmented again
    fresh: float = 0.7  # share of groups taken from the renderer's pool (once it has some)
    pool: int = 3000  # rendered groups kept for reuse
    checkpoint_every: int = 100
    eval_every: int = 250

    HELP = {
        "data": "a dataset from `numbpie synth` (train split to learn from, val split to pick the best)",
        "groups": "sibling pairs per batch; each gives 4 images",
        "fresh": "share of each batch from newly rendered products (0: the dataset only)",
        "init": "'bundled' or a weights file to start from when --out has no checkpoint",
        "shot_queries": "share of queries that are the product shot again (product-to-product search, as after an edit)",
    }


def augment(picture: Image.Image, rng: random.Random) -> Image.Image:
    """A random crop (80-100%), flip, mild lighting and blur; the hue is kept (colour is an attribute)."""
    w, h = picture.size
    cw, ch = round(w * rng.uniform(0.8, 1.0)), round(h * rng.uniform(0.8, 1.0))
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    out = picture.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    out = ImageEnhance.Brightness(out).enhance(rng.uniform(0.85, 1.15))
    out = ImageEnhance.Contrast(out).enhance(rng.uniform(0.85, 1.15))
    if rng.random() < 0.3:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    return out


def dataset_groups(data: Path, size: int) -> list[list[Product]]:
    """The train split's products as one-product groups (views shrunk to ~1.25x `size`)."""
    products: dict[int, Product] = {}
    for view, product, kind in split_views(data, "train", size, margin=0.25):
        item = products.setdefault(product.id, Product(
            f"d{product.id}", f"d{product.id}", {"category": product.category, **product.attributes}, None, []))
        if kind == "product":
            item.shot = view
        else:
            item.queries.append(view)
    return [[p] for p in products.values() if p.shot is not None and p.queries]


def info_nce(queries: torch.Tensor, shots: torch.Tensor, scale: float) -> torch.Tensor:
    """Symmetric cross-entropy of scaled cosines: query i belongs to shot i and no other."""
    logits = scale * F.normalize(queries) @ F.normalize(shots).T
    labels = torch.arange(len(queries))
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def attribute_loss(heads: nn.ModuleDict, features: torch.Tensor, tags: list[dict]) -> torch.Tensor:
    """Mean over attributes of the cross-entropy of each head (attributes that apply only)."""
    targets = label_targets(tags)
    losses = [F.cross_entropy(head(features), targets[name], ignore_index=IGNORE)
              for name, head in heads.items() if (targets[name] != IGNORE).any()]
    return torch.stack(losses).mean()


class EmbedderTask:
    """The embedder's model, data and loss for `loop.train`."""

    def __init__(self, options: EmbedderOptions, feed: Feed | None = None):
        self.options, self.feed = options, feed
        self.precision = loop.resolve_precision(options.precision)
        self.batch_size = options.groups * 4
        self.fixed = {"input_size": options.input_size, "arch": "inception_v3"}
        self.model = prepare(embedders.build_inception().train(), self.precision)
        self.heads = nn.ModuleDict({name: nn.Linear(embedders.DIM, len(values))
                                    for name, values in ATTRIBUTES.items()})
        params = [{"params": self.model.parameters()}, {"params": self.heads.parameters(), "lr": options.lr * 10}]
        self.optimizer = torch.optim.AdamW(params, lr=options.lr, weight_decay=1e-4, fused=True)
        self.stored = dataset_groups(Path(options.data), options.input_size)
        self._val = None

    # -- state for the loop
    def state(self) -> dict[str, np.ndarray]:
        tensors, _ = optimizer_state({"adamw": self.optimizer})
        return {**module_state({"model": self.model, "heads": self.heads}), **tensors, "rng": rng_state()}

    def extra(self) -> dict:
        return {"param_groups": optimizer_state({"adamw": self.optimizer})[1]}

    def load_state(self, tensors: dict, extra: dict) -> None:
        load_modules({"model": self.model, "heads": self.heads}, tensors)
        load_optimizers({"adamw": self.optimizer}, tensors, extra["param_groups"])
        set_rng_state(tensors["rng"])

    def init_from(self, source: str) -> None:
        start = embedders.load(source)
        if start.input_size != self.options.input_size:
            raise loop.TrainingError(f"{source} takes {start.input_size} px, not --input-size {self.options.input_size}.")
        self.model.load_state_dict(start.model.state_dict())

    # -- one step
    def _groups(self, rng: random.Random) -> list[list[Product]]:
        fresh = list(self.feed.groups) if self.feed else []
        picks = []
        for _ in range(self.options.groups):
            from_feed = fresh and len(fresh) >= 4 * self.options.groups and rng.random() < self.options.fresh
            picks.append(rng.choice(fresh if from_feed else self.stored))
        return picks

    def _query_view(self, product: Product, rng: random.Random) -> Image.Image:
        """A street crop or model shot; or, at `shot_queries`, the product shot itself: a search
        with an edited product picture must find products, not the sibling it was edited from."""
        return product.shot if rng.random() < self.options.shot_queries else rng.choice(product.queries)

    def _batch(self, step: int):
        rng = random.Random(self.options.seed * 1_000_003 + step)
        if self.feed:
            self.feed.collect()
        products = [p for group in self._groups(rng) for p in group]
        queries = [augment(self._query_view(p, rng), rng) for p in products]
        shots = [augment(p.shot, rng) for p in products]
        pixels = embedders.to_batch(queries + shots, self.options.input_size, MEAN, STD)
        return torch.from_numpy(pixels), [p.tags for p in products] * 2

    def train_step(self, step: int) -> dict[str, float]:
        pixels, tags = self._batch(step)
        if self.precision == "bf16":
            pixels = pixels.contiguous(memory_format=torch.channels_last)
        for group, base in zip(self.optimizer.param_groups, (self.options.lr, self.options.lr * 10), strict=True):
            group["lr"] = base * loop.lr_factor(step, self.options.steps, warmup=0.01)
        with autocast(self.precision):
            features = self.model(pixels).float()
        half = len(features) // 2
        identity = info_nce(features[:half], features[half:], self.options.scale)
        attributes = attribute_loss(self.heads, features, tags)
        loss = identity + self.options.attribute_weight * attributes
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item(), "nce": identity.item(), "attr": attributes.item(),
                "pool": float(len(self.feed.groups) if self.feed else 0)}

    # -- validation and export
    def embedder(self) -> embedders.Embedder:
        return embedders.Embedder(self.model, "training", "training", self.options.input_size, MEAN, STD,
                                  batch_size=32, precision=self.precision)

    def evaluate(self) -> dict[str, float]:
        """Street-to-shop on the val split: street crops (box + 10%) against product shots."""
        if self._val is None:
            self._val = split_views(Path(self.options.data), "val", self.options.input_size, margin=0.1)
        self.model.eval()
        try:
            vectors = self.embedder().embed([view for view, _, _ in self._val])
        finally:
            self.model.train()
        kinds = np.array([kind for _, _, kind in self._val])
        ids = np.array([product.id for _, product, _ in self._val])
        street, shot = kinds == "street", kinds == "product"
        figures = retrieval_metrics(vectors[street], ids[street], vectors[shot], ids[shot])
        gap = score_gap(vectors[street], ids[street], vectors[shot], ids[shot])
        return {**figures, "gap": gap, "score": figures["map"]}

    def export(self, folder: Path) -> None:
        """The backbone as fp16 safetensors with its preprocessing (what `embedder.load` reads)."""
        tensors = {k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous()
                   for k, v in self.model.state_dict().items()}
        metadata = {"input_size": str(self.options.input_size), "mean": json.dumps(MEAN), "std": json.dumps(STD)}
        save_file(tensors, str(folder / EXPORT_NAME), metadata)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    loop.add_arguments(parser, EmbedderOptions())


def main(args: argparse.Namespace) -> int:
    """Train (or resume) with a renderer process feeding new products; export the best weights."""
    import shutil

    options = loop.options_from(args, EmbedderOptions)
    torch.set_num_threads(options.threads)
    torch.manual_seed(options.seed)
    feed = Feed(options.seed + loop.checkpoint_step(options.out), pool=options.pool) if options.fresh > 0 else None
    try:
        task = EmbedderTask(options, feed)
        loop.train(task, options)
    finally:
        if feed:
            feed.close()
    if args.export:
        shutil.copyfile(Path(options.out) / "best" / EXPORT_NAME, args.export)
        print(f"exported {args.export}")
    return 0
