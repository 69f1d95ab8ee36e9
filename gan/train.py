"""Train the GAN editors on the synthetic fashion world, on the shared training loop.

    python -m gan.train tagunet  --edits shape   --data synth --out runs/gan/shape
    python -m gan.train tagunet  --edits pattern --data synth --out runs/gan/pattern
    python -m gan.train stargan  --data synth --out runs/stargan
    python -m gan.train cyclegan --data synth --out runs/cyclegan --pattern floral
    python -m gan.train pix2pix  --data synth --out runs/pix2pix

Training pairs are rendered on the fly from numbpie.synth, so they are exactly paired (the
same product with one attribute changed). `--data synth` draws any seed in TRAIN_SEEDS, which
no dataset from `python -m numbpie synth` uses; a dataset folder restricts training to its
train split. The run folder resumes by itself (numbpie.training.loop), or starts from the
bundled editors with `--init bundled`. Validation is the L1 to the true edit on held-out
products, relative to leaving the input unchanged (the judge of `eval edits`, the tagger, is
never used here); the best weights are exported into <out>/best/ in the fashion_gan folder
layout, so `gan.load_fashion_gan(out + "/best")` loads them.

`tagunet` is what the bundled editors use: a U-Net that takes the target tags as input
planes and paints a layer over the input (gan.tagunet), with a conditional PatchGAN critic.
The other three families keep fashion_gan's generator classes, so its files still load and
can be fine-tuned here. Adversarial losses are least squares (LSGAN) for all.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from numbpie.training import loop
from numbpie.training.torch_state import (
    autocast,
    load_modules,
    load_optimizers,
    module_state,
    optimizer_state,
    prepare,
)

from .batches import (
    PATTERN_LAYOUT,
    TRAIN_SEEDS,
    cyclegan_batch,
    data_seeds,
    pattern_batch,
    pix2pix_batch,
    stargan_batch,
    synth_world,
    validation_seeds,
)
from .editor import SHAPE_LAYOUT, Editor, denorm
from .loading import save
from .losses import classification_loss, cyclegan_step, paired_l1, pix2pix_step, stargan_step, tagunet_step
from .models import Discriminator, Generator, PatchDiscriminator, ResnetGenerator, UnetGenerator
from .tagunet import TagUnet, widen_output

__all__ = ["STEPS", "TRAIN_SEEDS", "GanTask", "build_parser", "classification_loss", "data_seeds", "editors",
           "main", "networks", "outputs", "paired_l1", "parse_options", "stargan_batch", "train"]

# Options that fix the networks' shapes: a resumed run must keep them.
SIZE_OPTIONS = ("family", "edits", "pattern", "image_size", "width", "d_width", "blocks", "d_layers",
                "num_downs", "residual")


# ---------------------------------------------------------------- families


def _layout(opt):
    return SHAPE_LAYOUT if opt.edits == "shape" else PATTERN_LAYOUT


def _c_dim(layout) -> int:
    return sum(len(values) for _, values in layout)


def networks(opt) -> dict[str, torch.nn.Module]:
    """Freshly initialised generators and critics of the family `opt` names."""
    if opt.family == "tagunet":
        c_dim = _c_dim(_layout(opt))
        prints = PATTERN_LAYOUT[0][1] if opt.edits == "pattern" else None  # blends towards gan.prints
        return {"G": TagUnet(c_dim, opt.width, opt.blocks, prints),
                "D": PatchDiscriminator(6 + c_dim, opt.d_width, opt.d_layers, "instance")}
    if opt.family == "stargan":
        c_dim = _c_dim(SHAPE_LAYOUT)
        return {"G": Generator(opt.width, c_dim, opt.blocks, residual=opt.residual),
                "D": Discriminator(opt.image_size, opt.d_width, c_dim, opt.d_layers)}
    if opt.family == "cyclegan":
        return {"G_add": ResnetGenerator(ngf=opt.width, n_blocks=opt.blocks, residual=opt.residual),
                "G_remove": ResnetGenerator(ngf=opt.width, n_blocks=opt.blocks, residual=opt.residual),
                "D_b": PatchDiscriminator(3, opt.d_width, opt.d_layers, "instance"),
                "D_a": PatchDiscriminator(3, opt.d_width, opt.d_layers, "instance")}
    return {"G": UnetGenerator(num_downs=opt.num_downs, ngf=opt.width),
            "D": PatchDiscriminator(6, opt.d_width, opt.d_layers, "batch")}


def _batch(opt, world, seeds, rng) -> dict[str, torch.Tensor]:
    if opt.family == "tagunet":
        if opt.edits == "shape":
            return stargan_batch(world, seeds, rng, opt.image_size, keep=0.125)
        return pattern_batch(world, seeds, rng, opt.image_size)
    if opt.family == "stargan":
        return stargan_batch(world, seeds, rng, opt.image_size)
    if opt.family == "cyclegan":
        return cyclegan_batch(world, seeds, rng, opt.image_size, opt.pattern)
    return pix2pix_batch(world, seeds, rng, opt.image_size)


STEPS = {"tagunet": tagunet_step, "stargan": stargan_step, "cyclegan": cyclegan_step, "pix2pix": pix2pix_step}


def outputs(opt, nets, batch) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(input, generated, true edit) triples of a batch, one per generator direction."""
    if opt.family in ("tagunet", "stargan"):
        return [(batch["x"], nets["G"](batch["x"], batch["c_trg"]), batch["y"])]
    if opt.family == "cyclegan":
        return [(batch["a"], nets["G_add"](batch["a"]), batch["b"]),
                (batch["b"], nets["G_remove"](batch["b"]), batch["a"])]
    return [(batch["x"], nets["G"](batch["x"]), batch["y"])]


def editors(opt, nets) -> dict[str, Editor]:
    """The generators as Editors, keyed by their path in the fashion_gan folder layout."""
    G, size = nets.get("G"), opt.image_size
    if opt.family == "tagunet" and opt.edits == "shape":
        return {"stargan/shape.safetensors": Editor("stargan", G, size, SHAPE_LAYOUT, "shape")}
    if opt.family == "tagunet":  # one file; gan.loading.pattern_editors makes the four directions
        return {"cyclegan/pattern.safetensors": Editor("pattern", G, size, PATTERN_LAYOUT, "pattern")}
    if opt.family == "stargan":
        return {"stargan/shape.safetensors": Editor("stargan", G, size, SHAPE_LAYOUT, "shape")}
    if opt.family == "cyclegan":
        folder = f"cyclegan/{opt.pattern}"
        return {f"{folder}/{opt.pattern}_{d}.safetensors": Editor("cyclegan", nets[f"G_{d}"], size,
                                                                 name=f"{opt.pattern}_{d}")
                for d in ("add", "remove")}
    return {"pix2pix.safetensors": Editor("pix2pix", G, size, name="pix2pix")}


# ---------------------------------------------------------------- the task


def grid(rows: list[torch.Tensor]) -> Image.Image:
    """Rows of (N, 3, H, W) images in [-1, 1] as one image, N across."""
    lines = [torch.cat(list(denorm(r.detach().float().cpu())), dim=2) for r in rows]
    pixels = (torch.cat(lines, dim=1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


class GanTask:
    """One GAN family's networks, data and step for `loop.train`."""

    def __init__(self, opt, world=None):
        self.opt, self.world = opt, world or synth_world()
        self.precision = loop.resolve_precision(opt.precision)
        self.batch_size = opt.batch_size
        self.fixed = {k: getattr(opt, k) for k in SIZE_OPTIONS}
        torch.manual_seed(opt.seed)
        self.nets = {name: prepare(net.to(opt.device).train(), self.precision)
                     for name, net in networks(opt).items()}
        self.optims = {name: torch.optim.Adam(net.parameters(), opt.lr, (opt.beta1, opt.beta2), fused=True)
                       for name, net in self.nets.items()}
        self.pool, held_out = data_seeds(opt.data)
        self.preview = self._data(np.array(held_out), np.random.default_rng(0))
        self.val = self._data(validation_seeds(opt.val_count), np.random.default_rng(1))

    def _data(self, seeds, rng) -> dict[str, torch.Tensor]:
        batch = _batch(self.opt, self.world, seeds, rng)
        if self.precision == "bf16":
            return {k: v.to(self.opt.device).contiguous(memory_format=torch.channels_last) if v.ndim == 4 else v
                    for k, v in batch.items()}
        return {k: v.to(self.opt.device) for k, v in batch.items()}

    def state(self) -> dict:
        return {**module_state(self.nets), **optimizer_state(self.optims)[0]}

    def extra(self) -> dict:
        return {"param_groups": optimizer_state(self.optims)[1]}

    def load_state(self, tensors, extra) -> None:
        load_modules(self.nets, tensors)
        load_optimizers(self.optims, tensors, extra["param_groups"])

    def init_from(self, source: str) -> None:
        """Start the generators from editors: 'bundled' or a folder in the fashion_gan layout."""
        from . import loading

        folder = None if source == "bundled" else Path(source)
        for rel, editor in editors(self.opt, self.nets).items():
            start = loading.load_bundled(rel) if folder is None else loading.load(folder / rel)
            try:
                outputs = getattr(getattr(editor.net, "out", None), "out_channels", 0)
                editor.net.load_state_dict(widen_output(dict(start.net.state_dict()), outputs))
            except RuntimeError:
                raise loop.TrainingError(f"--init {source}: its {rel} is not a {self.opt.family} generator of "
                                         "these sizes; start without --init or pass matching options.") from None

    def train_step(self, step: int) -> dict[str, float]:
        # The data depends on the step only, so a resumed run sees what an unbroken one would.
        rng = np.random.default_rng([self.opt.seed, step])
        seeds = rng.integers(*TRAIN_SEEDS, self.batch_size) if self.pool is None else rng.choice(
            self.pool, self.batch_size)
        factor = loop.lr_factor(step, self.opt.steps, warmup=0.01)
        for optim in self.optims.values():
            for group in optim.param_groups:
                group["lr"] = self.opt.lr * factor
        with autocast(self.precision):
            return STEPS[self.opt.family](self.nets, self.optims, self._data(seeds, rng), self.opt)

    def _eval_mode(self, flag: bool) -> None:
        for net in self.nets.values():
            net.train(not flag)

    def evaluate(self) -> dict[str, float]:
        """L1 to the true edit on held-out products, over L1 of the unchanged input (1 = identity)."""
        self._eval_mode(True)
        try:
            with torch.no_grad(), autocast(self.precision):
                triples = outputs(self.opt, self.nets, self.val)
                ratio = float(np.mean([((fake.float() - y).abs().mean() / (x - y).abs().mean().clamp_min(1e-6)).item()
                                       for x, fake, y in triples]))
                rows = [row for x, fake, y in outputs(self.opt, self.nets, self.preview) for row in (x, fake, y)]
        finally:
            self._eval_mode(False)
        samples = Path(self.opt.out) / "samples"
        samples.mkdir(parents=True, exist_ok=True)
        grid(rows).save(samples / "latest.png")
        return {"l1_ratio": ratio, "score": -ratio}

    def export(self, folder: Path) -> None:
        for rel, editor in editors(self.opt, self.nets).items():
            save(editor, folder / rel)


def train(opt, world=None) -> Path:
    """Train (or resume) one GAN; returns the run folder. `world` defaults to numbpie.synth."""
    loop.train(GanTask(opt, world), loop.LoopOptions(**{k: getattr(opt, k) for k in loop.LoopOptions.__dataclass_fields__}),
               progress=not opt.quiet)
    return Path(opt.out)


# ---------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    """Options for `python -m gan.train`; the ones that set network sizes are fixed for a run."""
    p = argparse.ArgumentParser(prog="python -m gan.train", description=__doc__.split("\n")[0])
    p.add_argument("family", choices=sorted(STEPS), help="which GAN to train")
    p.add_argument("--data", required=True, help="'synth' (any product) or a folder from `numbpie synth`")
    p.add_argument("--out", default=None, help="run folder (default runs/<family>)")
    p.add_argument("--edits", choices=("shape", "pattern"), default="shape", help="tagunet: which tags it edits")
    p.add_argument("--pattern", choices=("floral", "stripes"), default="floral", help="cyclegan: the pattern")
    p.add_argument("--steps", type=int, default=20000, help="total generator updates (a resumed run continues)")
    p.add_argument("--batch-size", type=int, default=8, help="examples per step")
    p.add_argument("--image-size", type=int, default=None, help="training and inference size (default 96 tagunet, 64 others)")
    p.add_argument("--width", type=int, default=None, help="generator base channels (default 32 tagunet/StarGAN, 16 others)")
    p.add_argument("--d-width", type=int, default=None, help="critic base channels (default: --width)")
    p.add_argument("--blocks", type=int, default=4, help="tagunet levels; StarGAN/CycleGAN residual blocks")
    p.add_argument("--d-layers", type=int, default=None, help="critic depth (StarGAN log2(size)-1; PatchGAN 3)")
    p.add_argument("--num-downs", type=int, default=None, help="pix2pix U-Net levels (default log2(size))")
    p.add_argument("--residual", action=argparse.BooleanOptionalAction, default=True,
                   help="StarGAN/CycleGAN generators predict a change and start as the identity")
    p.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (cosine decay over --steps)")
    p.add_argument("--beta1", type=float, default=0.5, help="Adam beta1")
    p.add_argument("--beta2", type=float, default=0.999, help="Adam beta2")
    p.add_argument("--lambda-cls", type=float, default=1.0, help="StarGAN domain classification weight")
    p.add_argument("--lambda-rec", type=float, default=10.0, help="cycle weight (StarGAN, CycleGAN)")
    p.add_argument("--lambda-idt", type=float, default=0.5, help="CycleGAN identity weight, relative to --lambda-rec")
    p.add_argument("--lambda-l1", type=float, default=None, help="L1 to the true edit (default 10; pix2pix 100)")
    p.add_argument("--lambda-low", type=float, default=0.0, help="tagunet: L1 of 4x-pooled images")
    p.add_argument("--lambda-adv", type=float, default=1.0, help="tagunet: adversarial weight")
    p.add_argument("--l1-focus", type=float, default=10.0, help="extra L1 weight of the pixels the true edit changes")
    p.add_argument("--val-count", type=int, default=48, help="held-out pairs for the validation figure")
    p.add_argument("--checkpoint-every", type=int, default=200, help="steps between checkpoints")
    p.add_argument("--eval-every", type=int, default=500, help="steps between validations (best kept in best/)")
    p.add_argument("--log-every", type=int, default=10, help="steps between loss log lines")
    p.add_argument("--seed", type=int, default=0, help="seed for initial weights and data order")
    p.add_argument("--precision", default="auto", help="auto (bf16 where the CPU has it), bf16 or fp32")
    p.add_argument("--init", default="", help="'bundled' or a fashion_gan-layout folder to start from")
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    """Parsed options with the family-dependent defaults filled in."""
    opt = build_parser().parse_args(argv)
    tagunet = opt.family == "tagunet"
    opt.out = opt.out or f"runs/{opt.family}"
    opt.image_size = opt.image_size or (96 if tagunet else 64)
    opt.width = opt.width or (32 if opt.family in ("stargan", "tagunet") else 16)
    opt.d_width = opt.d_width or opt.width
    levels = int(math.log2(opt.image_size))
    opt.d_layers = opt.d_layers or (levels - 1 if opt.family == "stargan" else 3)
    opt.num_downs = opt.num_downs or levels
    if opt.lambda_l1 is None:  # a pattern edit's truth has the house print, so plain L1 fits it too
        opt.lambda_l1 = 100.0 if opt.family == "pix2pix" else 10.0
    opt.edits = opt.edits if tagunet else None
    opt.pattern = opt.pattern if opt.family == "cyclegan" else None
    if opt.family in ("pix2pix", "tagunet"):  # pix2pix makes a new view; tagunet paints its own layer
        opt.residual = False
    return opt


def main(argv: list[str] | None = None) -> int:
    """Parse, train, report where the results went."""
    opt = parse_options(argv)
    if opt.threads:
        torch.set_num_threads(opt.threads)
    out = train(opt)
    print(f"run folder {out}; best editors in {out / 'best'}; load with gan.load_fashion_gan({str(out / 'best')!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
