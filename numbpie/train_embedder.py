"""Train the Inception-V3 embedder for street-to-shop retrieval on a synth dataset.

Objective: normalised softmax with an additive cosine margin (CosFace) over product ids, so
every view of a product (product shot, model shot, street crops) pulls towards one proxy.
Resumable: a checkpoint folder holds the weights, the optimiser state and the options.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageEnhance, ImageFilter
from safetensors.torch import load_file, save_file

from numbpie import images
from numbpie.embedder import build_inception, to_batch
from numbpie.evaluate import crop_with_margin, split_products, street_queries

__all__ = ["Options", "add_arguments", "export", "keep_if_best", "main", "train"]

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class Options:
    data: str
    out: str = "runs/embedder"
    input_size: int = 128
    batch_size: int = 48
    steps: int = 3000
    lr: float = 2e-3
    scale: float = 24.0
    margin: float = 0.15
    checkpoint_every: int = 100
    eval_every: int = 500  # 0: never; else val mAP every N steps, the best weights kept as best.safetensors
    seed: int = 0
    threads: int = 2


def split_views(data: Path, split: str, size: int, margin: float = 0.2) -> list[tuple[Image.Image, object, str]]:
    """(view, product, kind) for every product, model and street view of the split's products.

    Views are pre-shrunk to about 1.25x `size`; street views are their garment's box grown by `margin`.
    """
    def shrunk(picture: Image.Image) -> Image.Image:
        picture = picture.copy()
        picture.thumbnail((round(size * 1.25), round(size * 1.25)), Image.BILINEAR)
        return picture

    products = {p.id: p for p in split_products(data, split)}
    out = []
    for product in products.values():
        out.append((shrunk(images.load(product.image)), product, "product"))
        if product.metadata.get("model"):
            out.append((shrunk(images.load(Path(data) / product.metadata["model"])), product, "model"))
    for pid, path, box in street_queries(Path(data), set(products)):
        out.append((shrunk(crop_with_margin(images.load(path), box, margin=margin)), products[pid], "street"))
    return out


def load_views(data: Path, split: str, size: int) -> tuple[list[Image.Image], list[int]]:
    """Every view of the split's products and its product id."""
    views = split_views(data, split, size)
    return [view for view, _, _ in views], [product.id for _, product, _ in views]


def augment(picture: Image.Image, rng: random.Random) -> Image.Image:
    """A random crop (80-100%), flip, brightness/contrast jitter and blur; colour hue is kept."""
    w, h = picture.size
    cw, ch = round(w * rng.uniform(0.8, 1.0)), round(h * rng.uniform(0.8, 1.0))
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    out = picture.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    out = ImageEnhance.Brightness(out).enhance(rng.uniform(0.8, 1.2))
    out = ImageEnhance.Contrast(out).enhance(rng.uniform(0.8, 1.2))
    if rng.random() < 0.3:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    return out


def lr_factor(step: int, total: int, warmup: float = 0.05) -> float:
    """Linear warm-up then cosine decay to zero; a pure function of the step, so resuming is exact."""
    start = max(1, round(total * warmup))
    if step < start:
        return (step + 1) / start
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - start) / max(1, total - start))))


def cosface_loss(features: torch.Tensor, proxies: torch.Tensor, labels: torch.Tensor,
                 scale: float, margin: float) -> torch.Tensor:
    """Cross-entropy over scaled cosines to class proxies, the true class's cosine less `margin`."""
    cosines = F.normalize(features) @ F.normalize(proxies).T
    logits = scale * (cosines - margin * F.one_hot(labels, proxies.shape[0]))
    return F.cross_entropy(logits, labels)


class _State:
    """Model, proxies and optimiser, with save/resume in a checkpoint folder."""

    def __init__(self, options: Options, classes: int):
        self.model = build_inception().train()
        self.proxies = torch.nn.Parameter(torch.randn(classes, 2048) * 0.01)
        params = [{"params": self.model.parameters()}, {"params": [self.proxies], "lr": options.lr * 10}]
        self.optimizer = torch.optim.AdamW(params, lr=options.lr, weight_decay=1e-4)
        self.step = 0

    def save(self, folder: Path, options: Options) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        save_file({**tensors, "proxies": self.proxies.detach()}, folder / "state.safetensors.tmp")
        torch.save({"optimizer": self.optimizer.state_dict()}, folder / "optimizer.pt.tmp")
        (folder / "state.safetensors.tmp").replace(folder / "state.safetensors")
        (folder / "optimizer.pt.tmp").replace(folder / "optimizer.pt")
        (folder / "progress.json").write_text(json.dumps({"step": self.step, "options": asdict(options)}))

    def resume(self, folder: Path) -> bool:
        if not (folder / "progress.json").exists():
            return False
        tensors = load_file(folder / "state.safetensors")
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        self.proxies.data.copy_(tensors["proxies"])
        extra = torch.load(folder / "optimizer.pt", weights_only=True)
        self.optimizer.load_state_dict(extra["optimizer"])
        self.step = json.loads((folder / "progress.json").read_text())["step"]
        return True


def train(options: Options, log=print) -> _State:
    """Run (or resume) training until `options.steps`; checkpoints every `checkpoint_every` steps."""
    from tqdm import tqdm

    torch.set_num_threads(options.threads)
    torch.manual_seed(options.seed)
    views, labels = load_views(Path(options.data), "train", options.input_size)
    classes = {pid: n for n, pid in enumerate(sorted(set(labels)))}
    targets = torch.tensor([classes[pid] for pid in labels])
    state = _State(options, len(classes))
    folder = Path(options.out)
    if state.resume(folder):
        log(f"resumed at step {state.step}")
    rng = random.Random(options.seed + state.step)
    bar = tqdm(total=options.steps, initial=state.step, desc="train embedder", unit="step")
    while state.step < options.steps:
        picks = rng.sample(range(len(views)), options.batch_size)
        batch = to_batch([augment(views[i], rng) for i in picks], options.input_size, MEAN, STD)
        loss = cosface_loss(state.model(torch.from_numpy(batch)), state.proxies, targets[picks],
                            options.scale, options.margin)
        for group, base in zip(state.optimizer.param_groups, (options.lr, options.lr * 10), strict=True):
            group["lr"] = base * lr_factor(state.step, options.steps)
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        state.optimizer.step()
        state.step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if state.step % options.checkpoint_every == 0 or state.step == options.steps:
            state.save(folder, options)
            log(f"{time.strftime('%H:%M:%S')} step {state.step} loss {loss.item():.4f}")
        if options.eval_every and (state.step % options.eval_every == 0 or state.step == options.steps):
            keep_if_best(state, options, log)
    bar.close()
    return state


def keep_if_best(state: _State, options: Options, log=print) -> dict:
    """Val-split retrieval of the current weights; exports them to best.safetensors if the mAP is the best yet.

    Metric learning on a few thousand products overfits: the best weights are often not the last.
    """
    from numbpie.embedder import Embedder
    from numbpie.evaluate import evaluate_retrieval

    folder = Path(options.out)
    state.save(folder, options)
    model = Embedder(state.model.eval(), "training", f"step{state.step}", options.input_size, MEAN, STD)
    try:
        metrics = evaluate_retrieval(options.data, model, split="val")
    finally:
        state.model.train()
    record = folder / "best.json"
    best = json.loads(record.read_text()) if record.exists() else {"map": -1.0}
    log(f"step {state.step} val map {metrics['map']:.4f} recall@1 {metrics['recall@1']:.4f} (best {best['map']:.4f})")
    if metrics["map"] > best["map"]:
        export(folder, folder / "best.safetensors")
        record.write_text(json.dumps({"step": state.step, **metrics}))
    return metrics


def export(checkpoint: Path, out: Path) -> Path:
    """Write the backbone of a checkpoint as fp16 safetensors (what `embedder.load` reads)."""
    tensors = load_file(Path(checkpoint) / "state.safetensors")
    backbone = {k[6:]: (v.half() if v.is_floating_point() else v).contiguous()
                for k, v in tensors.items() if k.startswith("model.")}
    options = json.loads((Path(checkpoint) / "progress.json").read_text())["options"]
    # The preprocessing travels with the weights, so a path loads the same as a manifest name.
    metadata = {"input_size": str(options["input_size"]), "mean": json.dumps(MEAN), "std": json.dumps(STD)}
    save_file(backbone, out, metadata)
    return out


def add_option_arguments(parser: argparse.ArgumentParser, defaults) -> None:
    """--data, one flag per field of the `defaults` dataclass (its value as default), and --export."""
    parser.add_argument("--data", required=True, help="a dataset written by `python -m numbpie synth`")
    for name, value in asdict(defaults).items():
        if name != "data":
            parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value,
                                help=f"(default {value})")
    parser.add_argument("--export", default=None, help="after training, write fp16 safetensors here")


def run_training(args, options_class, train_function, export_function) -> int:
    """Train with the options in `args`, then export the checkpoint if --export was given."""
    options = options_class(**{k: v for k, v in vars(args).items() if k in options_class.__dataclass_fields__})
    train_function(options)
    if args.export:
        print(f"exported {export_function(Path(options.out), Path(args.export))}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_option_arguments(parser, Options(data=""))


def main(args) -> int:
    return run_training(args, Options, train, export)
