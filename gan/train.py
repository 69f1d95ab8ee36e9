"""Train the GANs on the synthetic fashion world.

    python -m gan.train stargan  --data synth --out runs/bundle --steps 20000
    python -m gan.train cyclegan --data synth --out runs/bundle --pattern floral
    python -m gan.train pix2pix  --data synth --out runs/bundle

Training pairs are always rendered on the fly from numbpie.synth, so they are exactly paired
(the same product with one attribute changed). `--data` picks the products:
- `synth`: any random_spec seed in TRAIN_SEEDS = [2**31, 2**32). Datasets written by
  `python -m numbpie synth` use seeds below 2**31, so none of their products (held-out ones
  included) is ever trained on; the sample grids show seeds 0..5.
- a folder written by `python -m numbpie synth`: the seeds of its 'train' split (from
  catalog.sqlite); the sample grids show its 'test' split.
Training resumes from
<out>/checkpoints/<run>.json when it exists; each run also exports its generators as
safetensors into <out> in the fashion_gan folder layout, so `gan.load_fashion_gan(out)` works.

StarGAN and CycleGAN generators are residual by default (`--residual`): they predict the
change to their input and start as the identity, and the paired L1 weights the pixels the true
edit changes (`--l1-focus`), so a small editor learns the edit, not a copy of the input, on a CPU.

Adversarial loss: least squares (LSGAN) for all three. StarGAN's paper uses WGAN-GP with five
critic steps per generator step; with the paired L1 term doing most of the work here, LSGAN
with one critic step is about six times cheaper per step on a CPU and stable enough.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from numbpie.attributes import ATTRIBUTES, SHAPE_ATTRIBUTES, applies_to
from numbpie.synth.dataset import TRAIN_SEEDS

from .editor import SHAPE_LAYOUT, Editor, denorm, encode_label, to_tensor
from .loading import save
from .models import Discriminator, Generator, PatchDiscriminator, ResnetGenerator, UnetGenerator

__all__ = [
    "FAMILIES",
    "TRAIN_SEEDS",
    "build_parser",
    "data_seeds",
    "main",
    "paired_l1",
    "synth_world",
    "train",
]

SAMPLE_COUNT = 6  # products per sample grid
# Options that fix the networks' shapes: a resumed run must keep them.
SIZE_OPTIONS = (
    "family",
    "pattern",
    "image_size",
    "width",
    "d_width",
    "blocks",
    "d_layers",
    "num_downs",
    "residual",
)


# ---------------------------------------------------------------- data


def synth_world() -> SimpleNamespace:
    """The renderer: numbpie.synth's random_spec, render_product and render_model."""
    from numbpie.synth import random_spec, render_model, render_product

    return SimpleNamespace(
        random_spec=random_spec, render_product=render_product, render_model=render_model
    )


def data_seeds(data: str) -> tuple[np.ndarray | None, list[int]]:
    """Training seeds for `--data` (None: all of TRAIN_SEEDS) and held-out seeds to show."""
    if data == "synth":
        return None, list(range(SAMPLE_COUNT))
    path = Path(data) / "catalog.sqlite"
    if not path.is_file():
        raise SystemExit(
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
        raise SystemExit(f"--data {data}: its catalog has no 'train' split to learn from.")
    return np.array(seeds["train"]), (seeds["test"] or seeds["train"])[:SAMPLE_COUNT]


def _stack(images: list[Image.Image], size: int) -> torch.Tensor:
    return torch.cat([to_tensor(image, size) for image in images])


def _tags(spec) -> dict[str, str]:
    return {"category": spec.category, **spec.attributes}


def stargan_batch(world, seeds, rng: np.random.Generator, size: int) -> dict[str, torch.Tensor]:
    """Products, the same products with one shape attribute changed, and both label vectors."""
    x, y, c_org, c_trg = [], [], [], []
    for seed in seeds:
        spec = world.random_spec(int(seed))
        names = [a for a in SHAPE_ATTRIBUTES if applies_to(a, spec.category)]
        name = names[rng.integers(len(names))]
        value = str(rng.choice([v for v in ATTRIBUTES[name] if v != getattr(spec, name)]))
        edited = dataclasses.replace(spec, **{name: value})
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


# ---------------------------------------------------------------- losses


def gan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss towards 1 (real) or 0 (fake)."""
    return F.mse_loss(logits, torch.full_like(logits, float(real)))


def classification_loss(
    logits: torch.Tensor, labels: torch.Tensor, layout=SHAPE_LAYOUT
) -> torch.Tensor:
    """Cross-entropy per one-hot group; all-zero groups (a top's length) are skipped."""
    total, start = logits.new_zeros(()), 0
    for _, values in layout:
        group = slice(start, start + len(values))
        present = labels[:, group].sum(1) > 0
        if present.any():
            total = total + F.cross_entropy(
                logits[present, group], labels[present, group].argmax(1)
            )
        start += len(values)
    return total


def paired_l1(fake: torch.Tensor, truth: torch.Tensor, source: torch.Tensor, focus: float) -> torch.Tensor:
    """L1 to the true edited render, the pixels the edit changes weighted 1 + `focus`.

    An edit changes a small part of the image (a sleeve, a neckline), so a plain mean lets the
    identity look almost right; the weight makes the changed part count from the first step.
    """
    changed = ((truth - source).abs().amax(1, keepdim=True) > 0.05).to(fake.dtype)
    return ((fake - truth).abs() * (1 + focus * changed)).mean()


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    """Freeze or unfreeze critics while the generator is updated."""
    for net in nets:
        net.requires_grad_(flag)


def _update(loss: torch.Tensor, *optimizers: torch.optim.Optimizer) -> None:
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    loss.backward()
    for optimizer in optimizers:
        optimizer.step()


# ---------------------------------------------------------------- training steps


def stargan_step(nets, optims, batch, opt) -> dict[str, float]:
    """One critic and one generator update: adversarial + domain class + cycle (+ paired L1)."""
    G, D = nets["G"], nets["D"]
    x, y, c_org, c_trg = batch["x"], batch["y"], batch["c_org"], batch["c_trg"]
    fake = G(x, c_trg)

    set_requires_grad([D], True)
    src_real, cls_real = D(x)
    src_fake, _ = D(fake.detach())
    d_cls = classification_loss(cls_real, c_org)
    d_loss = gan_loss(src_real, True) + gan_loss(src_fake, False) + opt.lambda_cls * d_cls
    _update(d_loss, optims["D"])

    set_requires_grad([D], False)
    src_fake, cls_fake = D(fake)
    g_adv, g_cls = gan_loss(src_fake, True), classification_loss(cls_fake, c_trg)
    g_rec, g_l1 = F.l1_loss(G(fake, c_org), x), paired_l1(fake, y, x, opt.l1_focus)
    g_loss = g_adv + opt.lambda_cls * g_cls + opt.lambda_rec * g_rec + opt.lambda_l1 * g_l1
    _update(g_loss, optims["G"])
    return {
        "D": d_loss.item(),
        "D_cls": d_cls.item(),
        "G_adv": g_adv.item(),
        "G_cls": g_cls.item(),
        "G_rec": g_rec.item(),
        "G_l1": g_l1.item(),
    }


def cyclegan_step(nets, optims, batch, opt) -> dict[str, float]:
    """One update of both generators (adversarial + cycle + identity (+ paired L1)), then both critics."""
    G_add, G_remove, D_b, D_a = nets["G_add"], nets["G_remove"], nets["D_b"], nets["D_a"]
    a, b = batch["a"], batch["b"]
    fake_b, fake_a = G_add(a), G_remove(b)

    set_requires_grad([D_a, D_b], False)
    g_adv = gan_loss(D_b(fake_b), True) + gan_loss(D_a(fake_a), True)
    g_cycle = F.l1_loss(G_remove(fake_b), a) + F.l1_loss(G_add(fake_a), b)
    g_idt = F.l1_loss(G_add(b), b) + F.l1_loss(G_remove(a), a)
    g_l1 = paired_l1(fake_b, b, a, opt.l1_focus) + paired_l1(fake_a, a, b, opt.l1_focus)
    g_loss = g_adv + opt.lambda_rec * (g_cycle + opt.lambda_idt * g_idt) + opt.lambda_l1 * g_l1
    _update(g_loss, optims["G_add"], optims["G_remove"])

    set_requires_grad([D_a, D_b], True)
    d_b = 0.5 * (gan_loss(D_b(b), True) + gan_loss(D_b(fake_b.detach()), False))
    d_a = 0.5 * (gan_loss(D_a(a), True) + gan_loss(D_a(fake_a.detach()), False))
    _update(d_a + d_b, optims["D_a"], optims["D_b"])
    return {
        "D_a": d_a.item(),
        "D_b": d_b.item(),
        "G_adv": g_adv.item(),
        "G_cycle": g_cycle.item(),
        "G_idt": g_idt.item(),
        "G_l1": g_l1.item(),
    }


def pix2pix_step(nets, optims, batch, opt) -> dict[str, float]:
    """One conditional-critic update, then one generator update: adversarial + L1."""
    G, D = nets["G"], nets["D"]
    x, y = batch["x"], batch["y"]
    fake = G(x)

    set_requires_grad([D], True)
    d_loss = 0.5 * (
        gan_loss(D(torch.cat([x, y], 1)), True)
        + gan_loss(D(torch.cat([x, fake.detach()], 1)), False)
    )
    _update(d_loss, optims["D"])

    set_requires_grad([D], False)
    g_adv, g_l1 = gan_loss(D(torch.cat([x, fake], 1)), True), F.l1_loss(fake, y)
    _update(g_adv + opt.lambda_l1 * g_l1, optims["G"])
    return {"D": d_loss.item(), "G_adv": g_adv.item(), "G_l1": g_l1.item()}


# ---------------------------------------------------------------- families


def _stargan_nets(opt) -> dict[str, nn.Module]:
    c_dim = sum(len(values) for _, values in SHAPE_LAYOUT)
    return {
        "G": Generator(opt.width, c_dim, opt.blocks, residual=opt.residual),
        "D": Discriminator(opt.image_size, opt.d_width, c_dim, opt.d_layers),
    }


def _cyclegan_nets(opt) -> dict[str, nn.Module]:
    return {
        "G_add": ResnetGenerator(ngf=opt.width, n_blocks=opt.blocks, residual=opt.residual),
        "G_remove": ResnetGenerator(ngf=opt.width, n_blocks=opt.blocks, residual=opt.residual),
        "D_b": PatchDiscriminator(3, opt.d_width, opt.d_layers, "instance"),
        "D_a": PatchDiscriminator(3, opt.d_width, opt.d_layers, "instance"),
    }


def _pix2pix_nets(opt) -> dict[str, nn.Module]:
    return {
        "G": UnetGenerator(num_downs=opt.num_downs, ngf=opt.width),
        "D": PatchDiscriminator(6, opt.d_width, opt.d_layers, "batch"),
    }


def _stargan_rows(nets, batch):
    return [batch["x"], batch["y"], nets["G"](batch["x"], batch["c_trg"])]


def _cyclegan_rows(nets, batch):
    return [batch["a"], nets["G_add"](batch["a"]), batch["b"], nets["G_remove"](batch["b"])]


def _pix2pix_rows(nets, batch):
    return [batch["x"], batch["y"], nets["G"](batch["x"])]


def _stargan_export(nets, opt):
    return {
        "stargan/shape.safetensors": Editor(
            "stargan", nets["G"], opt.image_size, SHAPE_LAYOUT, "shape"
        )
    }


def _cyclegan_export(nets, opt):
    folder = f"cyclegan/{opt.pattern}"
    return {
        f"{folder}/{opt.pattern}_add.safetensors": Editor(
            "cyclegan", nets["G_add"], opt.image_size, name=f"{opt.pattern}_add"
        ),
        f"{folder}/{opt.pattern}_remove.safetensors": Editor(
            "cyclegan", nets["G_remove"], opt.image_size, name=f"{opt.pattern}_remove"
        ),
    }


def _pix2pix_export(nets, opt):
    return {"pix2pix.safetensors": Editor("pix2pix", nets["G"], opt.image_size, name="pix2pix")}


@dataclass(frozen=True)
class Family:
    """What differs between the three GANs: networks, data, one training step, samples, export."""

    nets: Callable
    batch: Callable
    step: Callable
    rows: Callable  # sample grid rows, each (N, 3, H, W) in [-1, 1]
    export: Callable  # {relative path: Editor}
    lambda_l1: float


FAMILIES = {
    "stargan": Family(
        _stargan_nets, stargan_batch, stargan_step, _stargan_rows, _stargan_export, 10.0
    ),
    "cyclegan": Family(
        _cyclegan_nets, cyclegan_batch, cyclegan_step, _cyclegan_rows, _cyclegan_export, 10.0
    ),
    "pix2pix": Family(
        _pix2pix_nets, pix2pix_batch, pix2pix_step, _pix2pix_rows, _pix2pix_export, 100.0
    ),
}


# ---------------------------------------------------------------- checkpoints and samples


def run_name(opt) -> str:
    """'stargan', 'pix2pix' or 'cyclegan_<pattern>'."""
    return f"cyclegan_{opt.pattern}" if opt.family == "cyclegan" else opt.family


def save_checkpoint(stem: Path, nets, optims, opt, step: int) -> None:
    """Networks and optimiser state as safetensors, options and step as JSON (written last)."""
    tensors, groups = {}, {}
    for name, net in nets.items():
        tensors.update(
            {f"net.{name}.{k}": v.detach().cpu().clone() for k, v in net.state_dict().items()}
        )
    for name, optim in optims.items():
        state = optim.state_dict()
        groups[name] = state["param_groups"]
        for index, values in state["state"].items():
            tensors.update(
                {
                    f"optim.{name}.{index}.{k}": torch.as_tensor(v).cpu().clone()
                    for k, v in values.items()
                }
            )
    stem.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, f"{stem}.safetensors.part")
    os.replace(f"{stem}.safetensors.part", f"{stem}.safetensors")
    info = {"step": step, "options": vars(opt), "param_groups": groups}
    Path(f"{stem}.json.part").write_text(json.dumps(info, indent=1))
    os.replace(f"{stem}.json.part", f"{stem}.json")


def load_checkpoint(stem: Path, nets, optims) -> int:
    """Restore networks and optimisers from `stem`; returns the step to continue from."""
    info = json.loads(Path(f"{stem}.json").read_text())
    tensors = load_file(f"{stem}.safetensors")
    for name, net in nets.items():
        prefix = f"net.{name}."
        net.load_state_dict(
            {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        )
    for name, optim in optims.items():
        state: dict[int, dict] = {}
        prefix = f"optim.{name}."
        for key, value in tensors.items():
            if key.startswith(prefix):
                index, field = key[len(prefix) :].split(".", 1)
                state.setdefault(int(index), {})[field] = value
        optim.load_state_dict({"state": state, "param_groups": info["param_groups"][name]})
    return int(info["step"])


def grid(rows: list[torch.Tensor]) -> Image.Image:
    """Rows of (N, 3, H, W) images in [-1, 1] as one image, N across."""
    lines = [torch.cat(list(denorm(r.detach().float().cpu())), dim=2) for r in rows]
    pixels = (torch.cat(lines, dim=1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def write_samples(family: Family, nets, batch, path: Path) -> None:
    """A sample grid (held-out products) with the generators in eval mode."""
    for net in nets.values():
        net.eval()
    with torch.no_grad():
        image = grid(family.rows(nets, batch))
    for net in nets.values():
        net.train()
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def export(family: Family, nets, opt) -> list[Path]:
    """Write the generators as loadable safetensors in the fashion_gan folder layout."""
    return [save(editor, Path(opt.out) / rel) for rel, editor in family.export(nets, opt).items()]


# ---------------------------------------------------------------- the loop


def _batch(family: Family, world, seeds, rng, opt) -> dict[str, torch.Tensor]:
    extra = {"pattern": opt.pattern} if opt.family == "cyclegan" else {}
    batch = family.batch(world, seeds, rng, opt.image_size, **extra)
    return {k: v.to(opt.device) for k, v in batch.items()}


def _resume(stem: Path, nets, optims, opt) -> int:
    saved = json.loads(Path(f"{stem}.json").read_text())["options"]
    changed = [k for k in SIZE_OPTIONS if saved.get(k) != getattr(opt, k)]
    if changed:
        raise SystemExit(
            f"{stem}.json was trained with other sizes ({', '.join(f'{k}={saved.get(k)}' for k in changed)}); "
            "pass the same options or a new --out."
        )
    return load_checkpoint(stem, nets, optims)


def _seeds(pool: np.ndarray | None, rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` training seeds: from the dataset's train split, or anywhere in TRAIN_SEEDS."""
    return rng.integers(*TRAIN_SEEDS, n) if pool is None else rng.choice(pool, n)


def _periodic(done: int, losses: dict, family: Family, nets, optims, preview, opt) -> None:
    """Log losses, write a sample grid, save a checkpoint and export, each at its interval."""
    out, name = Path(opt.out), run_name(opt)
    last = done == opt.steps
    if done % opt.log_every == 0 or last:
        with (out / "checkpoints" / f"{name}.log.jsonl").open("a") as handle:
            handle.write(json.dumps({"step": done, **losses}) + "\n")
    if done % opt.sample_every == 0 or last:
        write_samples(family, nets, preview, out / "samples" / f"{name}_{done:06d}.png")
    if done % opt.save_every == 0 or last:
        save_checkpoint(out / "checkpoints" / name, nets, optims, opt, done)
        export(family, nets, opt)


def train(opt: argparse.Namespace, world=None) -> Path:
    """Train (or resume) one GAN; returns the checkpoint stem. `world` defaults to numbpie.synth."""
    family = FAMILIES[opt.family]
    world = world or synth_world()
    torch.manual_seed(opt.seed)
    nets = {name: net.to(opt.device).train() for name, net in family.nets(opt).items()}
    betas = (opt.beta1, opt.beta2)
    optims = {name: torch.optim.Adam(net.parameters(), opt.lr, betas) for name, net in nets.items()}
    stem = Path(opt.out) / "checkpoints" / run_name(opt)
    stem.parent.mkdir(parents=True, exist_ok=True)
    start = _resume(stem, nets, optims, opt) if Path(f"{stem}.json").is_file() else 0
    pool, held_out = data_seeds(opt.data)
    preview = _batch(family, world, held_out, np.random.default_rng(0), opt)

    bar = tqdm(
        range(start, opt.steps), initial=start, total=opt.steps, desc=stem.name, disable=opt.quiet
    )
    for step in bar:
        # The data depends on the step only, so a resumed run sees what an unbroken one would.
        rng = np.random.default_rng([opt.seed, step])
        batch = _batch(family, world, _seeds(pool, rng, opt.batch_size), rng, opt)
        losses = family.step(nets, optims, batch, opt)
        bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
        _periodic(step + 1, losses, family, nets, optims, preview, opt)
    return stem


# ---------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    """Options for `python -m gan.train`; the ones that set network sizes are fixed for a run."""
    p = argparse.ArgumentParser(prog="python -m gan.train", description=__doc__.split("\n")[0])
    p.add_argument("family", choices=sorted(FAMILIES), help="which GAN to train")
    p.add_argument(
        "--data",
        required=True,
        help="'synth' (any product) or a folder from `python -m numbpie synth` (its train split)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="run folder for checkpoints, samples and exported weights (default runs/<family>)",
    )
    p.add_argument(
        "--pattern",
        choices=("floral", "stripes"),
        default="floral",
        help="CycleGAN: the pattern to add/remove",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=20000,
        help="total generator updates (a resumed run continues to this)",
    )
    p.add_argument("--batch-size", type=int, default=8, help="examples per step")
    p.add_argument(
        "--image-size", type=int, default=64, help="training and inference size in pixels"
    )
    p.add_argument(
        "--width",
        type=int,
        default=None,
        help="generator base channels (default 32 StarGAN, 16 others)",
    )
    p.add_argument(
        "--d-width", type=int, default=None, help="critic base channels (default: --width)"
    )
    p.add_argument(
        "--blocks",
        type=int,
        default=4,
        help="residual blocks (StarGAN repeat_num, CycleGAN n_blocks)",
    )
    p.add_argument(
        "--d-layers",
        type=int,
        default=None,
        help="critic depth (StarGAN: log2(size)-1 strided convs; PatchGAN: 3)",
    )
    p.add_argument(
        "--num-downs",
        type=int,
        default=None,
        help="pix2pix U-Net levels (default log2(image size))",
    )
    p.add_argument(
        "--residual",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="StarGAN/CycleGAN generators predict the change to their input and start as the identity",
    )
    p.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate")
    p.add_argument("--beta1", type=float, default=0.5, help="Adam beta1")
    p.add_argument("--beta2", type=float, default=0.999, help="Adam beta2")
    p.add_argument(
        "--lambda-cls", type=float, default=1.0, help="StarGAN domain classification weight"
    )
    p.add_argument(
        "--lambda-rec",
        type=float,
        default=10.0,
        help="cycle reconstruction weight (StarGAN, CycleGAN)",
    )
    p.add_argument(
        "--lambda-idt",
        type=float,
        default=0.5,
        help="CycleGAN identity weight, relative to --lambda-rec",
    )
    p.add_argument(
        "--lambda-l1",
        type=float,
        default=None,
        help="L1 to the true paired render (default 10; pix2pix 100)",
    )
    p.add_argument(
        "--l1-focus",
        type=float,
        default=10.0,
        help="StarGAN/CycleGAN: extra weight of the pixels the paired edit changes, in the L1 term",
    )
    p.add_argument("--sample-every", type=int, default=500, help="steps between sample grids")
    p.add_argument(
        "--save-every", type=int, default=500, help="steps between checkpoints and exports"
    )
    p.add_argument("--log-every", type=int, default=10, help="steps between loss log lines")
    p.add_argument("--seed", type=int, default=0, help="seed for initial weights and data order")
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    """Parsed options with the family-dependent defaults filled in."""
    opt = build_parser().parse_args(argv)
    opt.out = opt.out or f"runs/{opt.family}"
    opt.width = opt.width or (32 if opt.family == "stargan" else 16)
    opt.d_width = opt.d_width or opt.width
    levels = int(math.log2(opt.image_size))
    opt.d_layers = opt.d_layers or (levels - 1 if opt.family == "stargan" else 3)
    opt.num_downs = opt.num_downs or levels
    opt.lambda_l1 = FAMILIES[opt.family].lambda_l1 if opt.lambda_l1 is None else opt.lambda_l1
    if opt.family != "cyclegan":
        opt.pattern = None
    if opt.family == "pix2pix":  # a new view of the garment, not a change to it
        opt.residual = False
    return opt


def main(argv: list[str] | None = None) -> int:
    """Parse, train, report where the results went."""
    opt = parse_options(argv)
    if opt.threads:
        torch.set_num_threads(opt.threads)
    stem = train(opt)
    print(
        f"checkpoint {stem}.safetensors; samples in {Path(opt.out) / 'samples'}; load with gan.load_fashion_gan({opt.out!r})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
