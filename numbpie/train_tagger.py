"""Train the attribute tagger on a synth dataset: product shots, model shots and street crops.

Cross-entropy per attribute (length only for dresses), AdamW with a cosine schedule.
Resumable: the checkpoint folder holds the weights, the optimiser state and the options.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file

from numbpie.embedder import to_batch
from numbpie.tagger import IGNORE, INPUT_SIZE, MEAN, STD, Tagger, TaggerNet, accuracy, label_targets, load
from numbpie.train_embedder import (
    add_option_arguments,
    augment,
    lr_factor,
    run_training,
    split_views,
)

__all__ = ["Options", "add_arguments", "evaluate", "export", "fresh_products", "labelled_views", "main", "train"]


@dataclass
class Options:
    data: str
    out: str = "runs/tagger"
    input_size: int = 112
    batch_size: int = 64
    steps: int = 1500
    lr: float = 3e-3
    checkpoint_every: int = 100
    seed: int = 0
    threads: int = 2
    fresh: float = 0.0  # share of each batch rendered on the fly: new product shots, never in a dataset
    init: str = ""  # start from these tagger weights (fine-tuning) instead of from scratch


def labelled_views(data: Path, split: str, size: int = INPUT_SIZE) -> tuple[list[Image.Image], list[dict]]:
    """Every view of the split's products (shrunk to ~1.25x `size`) with its attribute labels."""
    views = split_views(Path(data), split, size, margin=0.1)
    return [view for view, _, _ in views], [_tags(product) for _, product, _ in views]


def _tags(product) -> dict[str, str]:
    return {"category": product.category, **product.attributes}


def fresh_products(rng: random.Random, count: int, size: int) -> tuple[list[Image.Image], list[dict]]:
    """`count` product shots of new synthetic garments (seeds in TRAIN_SEEDS) and their labels."""
    from numbpie.synth import TRAIN_SEEDS, random_spec, render_product

    specs = [random_spec(rng.randrange(*TRAIN_SEEDS)) for _ in range(count)]
    return [render_product(spec, size=round(size * 1.25)) for spec in specs], [
        {"category": spec.category, **spec.attributes} for spec in specs]


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
            total = total + F.cross_entropy(logits, targets[name], ignore_index=IGNORE)
    return total


def _save(model, optimizer, step: int, options: Options) -> None:
    folder = Path(options.out)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), folder / "state.safetensors.tmp")
    torch.save({"optimizer": optimizer.state_dict()}, folder / "optimizer.pt.tmp")
    (folder / "state.safetensors.tmp").replace(folder / "state.safetensors")
    (folder / "optimizer.pt.tmp").replace(folder / "optimizer.pt")
    (folder / "progress.json").write_text(json.dumps({"step": step, "options": asdict(options)}))


def _resume(model, optimizer, folder: Path) -> int:
    if not (folder / "progress.json").exists():
        return 0
    model.load_state_dict(load_file(folder / "state.safetensors"))
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True)["optimizer"])
    return json.loads((folder / "progress.json").read_text())["step"]


def train(options: Options, log=print) -> Tagger:
    """Run (or resume) training to `options.steps`, then log validation accuracy per attribute."""
    from tqdm import tqdm

    torch.set_num_threads(options.threads)
    torch.manual_seed(options.seed)
    views, labels = labelled_views(Path(options.data), "train", options.input_size)
    model = TaggerNet().train()
    if options.init and not (Path(options.out) / "progress.json").exists():
        model.load_state_dict(load(options.init).model.state_dict())
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=1e-4)
    step = _resume(model, optimizer, Path(options.out))
    if step:
        log(f"resumed at step {step}")
    rng = random.Random(options.seed + step)
    bar = tqdm(total=options.steps, initial=step, desc="train tagger", unit="step")
    while step < options.steps:
        fresh = round(options.batch_size * options.fresh)
        picks = rng.sample(range(len(views)), min(options.batch_size - fresh, len(views)))
        images, targets = fresh_products(rng, fresh, options.input_size)
        images += [views[i] for i in picks]
        targets += [labels[i] for i in picks]
        batch = to_batch([augment(image, rng) for image in images], options.input_size, MEAN, STD)
        loss = tagger_loss(model(torch.from_numpy(batch)), label_targets(targets))
        for group in optimizer.param_groups:
            group["lr"] = options.lr * lr_factor(step, options.steps)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if step % options.checkpoint_every == 0 or step == options.steps:
            _save(model, optimizer, step, options)
            log(f"{time.strftime('%H:%M:%S')} step {step} loss {loss.item():.4f}")
    bar.close()
    tagger = Tagger(model.eval(), input_size=options.input_size)
    val_views, val_labels = labelled_views(Path(options.data), "val", options.input_size)
    log("val accuracy " + json.dumps({k: round(v, 4) for k, v in accuracy(tagger, val_views, val_labels).items()}))
    return tagger


def export(checkpoint: Path, out: Path) -> Path:
    """Write a checkpoint's weights as fp16 safetensors (what `tagger.load` reads)."""
    state = load_file(Path(checkpoint) / "state.safetensors")
    options = json.loads((Path(checkpoint) / "progress.json").read_text())["options"]
    save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()}, out,
              {"input_size": str(options.get("input_size", INPUT_SIZE))})
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_option_arguments(parser, Options(data=""))


def main(args) -> int:
    return run_training(args, Options, train, export)
