"""Embedder cost: Inception-V3 FLOPs per image, indexing throughput vs batch and threads, bf16 vs fp32."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from numbpie.embedder import Embedder, build_inception, to_batch

__all__ = ["catalog_images", "inception_flops", "precision_rows", "random_inception", "throughput_rows"]


def random_inception(input_size: int, seed: int = 0) -> Embedder:
    """A seeded random-weight Inception-V3 embedder: the same FLOPs as ImageNet weights."""
    torch.manual_seed(seed)
    return Embedder(build_inception(), f"random-inception-{input_size}", f"random-seed{seed}", input_size)


def catalog_images(count: int, seed: int = 0) -> list:
    """Synthetic product shots (PIL, 256 px) to feed the embedder, as a catalog would."""
    from numbpie.synth import random_spec, render_product

    return [render_product(random_spec(seed + i)) for i in range(count)]


def inception_flops(model: torch.nn.Module, input_size: int) -> float:
    """FLOPs (2 x multiply-adds, convs and matmuls) of one forward pass on one image."""
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(torch.zeros(1, 3, input_size, input_size))
    return float(counter.get_total_flops())


def _images_per_s(embedder: Embedder, images: list, min_seconds: float) -> float:
    """Images/s of Embedder.embed (letterbox + normalise + forward + L2), after one warm-up batch."""
    embedder.embed(images[: embedder.batch_size])
    done, start = 0, time.perf_counter()
    while True:
        embedder.embed(images)
        done += len(images)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return done / elapsed


def throughput_rows(embedder: Embedder, images: list, batch_sizes=(1, 4, 16, 32),
                    threads=(1, 2, 4), fixed_batch: int = 16, fixed_threads: int = 2,
                    min_seconds: float = 3.0) -> list[dict]:
    """Images/s vs batch size (at `fixed_threads`) and vs torch threads (at `fixed_batch`)."""
    flops = inception_flops(embedder.model, embedder.input_size)
    configs = [(b, fixed_threads) for b in batch_sizes]
    configs += [(fixed_batch, t) for t in threads if (fixed_batch, t) not in configs]
    saved, rows = (embedder.batch_size, torch.get_num_threads()), []
    for batch, t in configs:
        embedder.batch_size = batch
        torch.set_num_threads(t)
        rate = _images_per_s(embedder, images[: max(batch, len(images) // batch * batch)], min_seconds)
        rows.append({"input_px": embedder.input_size, "batch": batch, "threads": t,
                     "images_per_s": rate, "gflops": rate * flops / 1e9})
    embedder.batch_size, _ = saved
    torch.set_num_threads(saved[1])
    return rows


def _forward(model, batch: np.ndarray, variant: str) -> tuple[np.ndarray, float]:
    """Pooled features and seconds for one forward pass in `variant` (fp32, channels_last, bf16)."""
    x = torch.from_numpy(batch)
    if variant != "fp32":
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=variant == "bf16"):
        start = time.perf_counter()
        out = model(x)
        seconds = time.perf_counter() - start
    return out.float().numpy(), seconds


def precision_rows(embedder: Embedder, images: list, batch: int = 16, runs: int = 3) -> list[dict]:
    """fp32 vs fp32 channels_last vs bf16 autocast: images/s, speed-up and cosine to the fp32 vectors."""
    model = embedder.model
    x = to_batch(images[:batch], embedder.input_size, embedder.mean, embedder.std)
    rows, reference, base = [], None, None
    for variant in ("fp32", "fp32 channels_last", "bf16"):
        if variant != "fp32":
            model = model.to(memory_format=torch.channels_last)
        _forward(model, x, variant)  # warm-up (oneDNN picks and caches kernels)
        best, out = float("inf"), None
        for _ in range(runs):
            out, seconds = _forward(model, x, variant)
            best = min(best, seconds)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        reference = out if reference is None else reference
        cosine = np.sum(out * reference, axis=1)
        rate = batch / best
        base = base or rate
        rows.append({"input_px": embedder.input_size, "variant": variant, "batch": batch,
                     "images_per_s": rate, "speedup": rate / base,
                     "cosine_min": float(cosine.min()), "cosine_mean": float(cosine.mean())})
    embedder.model = model.to(memory_format=torch.contiguous_format)
    return rows
