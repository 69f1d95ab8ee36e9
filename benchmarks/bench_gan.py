"""GAN edit latency per editor: the bundled editors, and random weights at the fashion_gan sizes (same FLOPs as trained ones)."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import percentiles, time_calls

__all__ = ["bundled_editors", "editors", "gan_rows"]


def editors() -> dict:
    """name -> gan.Editor with random weights at the sizes fashion_gan ships (see gan.loading)."""
    from gan.editor import SHAPE_LAYOUT, Editor
    from gan.loading import IMAGE_SIZES, build

    torch.manual_seed(0)
    c_dim = sum(len(values) for _, values in SHAPE_LAYOUT)
    nets = {
        "stargan": build("stargan", {"conv_dim": 64, "c_dim": c_dim, "repeat_num": 6}),
        "cyclegan": build("cyclegan", {"ngf": 64, "n_blocks": 9}),
        "pix2pix": build("pix2pix", {"num_downs": 8, "ngf": 64}),
    }
    return {family: Editor(family, net.eval().requires_grad_(False), IMAGE_SIZES[family],
                           SHAPE_LAYOUT if family == "stargan" else (), f"random-{family}")
            for family, net in nets.items()}


def bundled_editors() -> dict:
    """family -> the bundled gan.Editor (floral_add for CycleGAN); empty when none are registered."""
    from numbpie.app.assemble import bundled_editor

    style = bundled_editor()
    if style is None:
        return {}
    found = {"stargan": style.stargan[0] if style.stargan else None,
             "cyclegan": style.cyclegan.get("floral_add"), "pix2pix": style.pix2pix}
    return {family: editor for family, editor in found.items() if editor is not None}


def _flops(editor) -> float:
    x = torch.zeros(1, 3, editor.image_size, editor.image_size)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        editor.net(x, torch.zeros(1, editor.net.c_dim)) if editor.family == "stargan" else editor.net(x)
    return float(counter.get_total_flops())


def gan_rows(image, runs: int = 10, peak_gflops: float | None = None) -> list[dict]:
    """Editor.apply latency (resize in, generator, resize out) per editor, fp32 and bf16 autocast."""
    label = {"category": "dress", "sleeve_length": "long", "fit": "loose", "neckline": "v", "length": "knee"}
    rows = []
    sets = [("bundled", bundled_editors()), ("fashion_gan sizes, random", editors())]
    for weights, family, editor in [(w, f, e) for w, found in sets for f, e in found.items()]:
        flops = _flops(editor)
        target = label if family == "stargan" else None
        for variant in ("fp32", "bf16"):
            with torch.autocast("cpu", torch.bfloat16, enabled=variant == "bf16"):
                seconds = time_calls(lambda e=editor, t=target: e.apply(image, t), runs)
            p = percentiles(seconds)
            gflops = flops / (p["p50_ms"] / 1e3) / 1e9
            rows.append({"editor": family, "weights": weights, "input_px": editor.image_size, "variant": variant,
                         "gflop_per_image": flops / 1e9, **p, "gflops": gflops,
                         "of_peak": gflops / peak_gflops if peak_gflops and variant == "fp32" else None})
    return rows
