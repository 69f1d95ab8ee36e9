"""Training throughput, fp32 against bf16 autocast + channels_last, in one run.

    python -m benchmarks.bench_train [--threads 2] [--steps 6] [--out docs/benchmarks.md]

One optimiser step is what the trainers run per batch (numbpie.training.embedder: Inception-V3
forward, InfoNCE + attribute heads, backward, fused AdamW; gan.train tagunet: critic then generator
update), on random tensors so that rendering does not count. Each row is the median of
`--steps` timed steps after two warm-up steps. The section between the markers in
docs/benchmarks.md is replaced; the rest of the report stays as it is.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

START, END = "<!-- training-throughput:start -->", "<!-- training-throughput:end -->"


def _median_seconds(step, steps: int) -> float:
    for _ in range(2):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def embedder_step(precision: str, batch: int = 32, size: int = 128):
    """One embedder training step as numbpie.training.embedder runs it, on random pixels."""
    from numbpie.attributes import ATTRIBUTES
    from numbpie.embedder import build_inception
    from numbpie.training.embedder import info_nce
    from numbpie.training.torch_state import autocast, prepare

    model = prepare(build_inception().train(), precision)
    heads = torch.nn.ModuleDict({n: torch.nn.Linear(2048, len(v)) for n, v in ATTRIBUTES.items()})
    optimizer = torch.optim.AdamW([*model.parameters(), *heads.parameters()], lr=1e-4, fused=True)
    pixels = torch.randn(batch, 3, size, size)
    if precision == "bf16":
        pixels = pixels.contiguous(memory_format=torch.channels_last)
    labels = torch.zeros(batch, dtype=torch.long)

    def step():
        with autocast(precision):
            features = model(pixels).float()
        half = batch // 2
        loss = info_nce(features[:half], features[half:], 20.0)
        loss = loss + sum(torch.nn.functional.cross_entropy(h(features), labels) for h in heads.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step, batch


def tagunet_step(precision: str, batch: int = 8, size: int = 96):
    """One TagUnet shape-editor step (critic, then generator) as gan.train runs it."""
    from gan.editor import SHAPE_LAYOUT
    from gan.losses import tagunet_step as one_step
    from gan.models import PatchDiscriminator
    from gan.tagunet import TagUnet
    from numbpie.training.torch_state import autocast, prepare

    c_dim = sum(len(v) for _, v in SHAPE_LAYOUT)
    nets = {"G": prepare(TagUnet(c_dim, 32, 4), precision),
            "D": prepare(PatchDiscriminator(6 + c_dim, 32, 3, "instance"), precision)}
    optims = {k: torch.optim.Adam(n.parameters(), 2e-4, (0.5, 0.999), fused=True) for k, n in nets.items()}
    layout = torch.zeros(batch, c_dim)
    layout[:, 0] = 1
    data = {"x": torch.rand(batch, 3, size, size) * 2 - 1, "y": torch.rand(batch, 3, size, size) * 2 - 1,
            "c_trg": layout}
    if precision == "bf16":
        data = {k: v.contiguous(memory_format=torch.channels_last) if v.ndim == 4 else v for k, v in data.items()}
    opt = SimpleNamespace(l1_focus=10.0, lambda_adv=1.0, lambda_l1=10.0, lambda_low=0.0)

    def step():
        with autocast(precision):
            one_step(nets, optims, data, opt)

    return step, batch


MODELS = {"embedder (Inception-V3, 128 px, batch 32)": embedder_step,
          "shape editor (TagUnet 96 px + PatchGAN, batch 8)": tagunet_step}


def rows(threads: int, steps: int) -> list[dict]:
    torch.set_num_threads(threads)
    out = []
    for name, build in MODELS.items():
        row = {"model": name, "threads": threads}
        for precision in ("fp32", "bf16"):
            torch.manual_seed(0)
            step, batch = build(precision)
            row[f"{precision}_images_per_s"] = batch / _median_seconds(step, steps)
        row["speedup"] = row["bf16_images_per_s"] / row["fp32_images_per_s"]
        out.append(row)
    return out


def markdown(found: list[dict], command: str, load: str) -> str:
    lines = [START, "## Training throughput (fp32 vs bf16 autocast + channels_last)", "",
             f"`{command}` on {platform.processor() or platform.machine()}, {found[0]['threads']} threads; "
             f"load average before the run: {load}.", "",
             "| model | fp32 images/s | bf16 images/s | bf16 / fp32 |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {r['model']} | {r['fp32_images_per_s']:.1f} | {r['bf16_images_per_s']:.1f} | "
              f"{r['speedup']:.2f}x |" for r in found]
    return "\n".join([*lines, END])


def write(section: str, out: Path) -> None:
    """Replace the training section of `out` (or append it)."""
    text = out.read_text() if out.is_file() else ""
    if START in text and END in text:
        text = text[:text.index(START)] + section + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    out.write_text(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--steps", type=int, default=6, help="timed steps per row (after 2 warm-up steps)")
    p.add_argument("--out", type=Path, default=None, help="markdown report to update (e.g. docs/benchmarks.md)")
    args = p.parse_args(argv)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"
    found = rows(args.threads, args.steps)
    print(json.dumps(found, indent=1))
    if args.out:
        command = f"python -m benchmarks.bench_train --threads {args.threads} --steps {args.steps}"
        write(markdown(found, command, load), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
