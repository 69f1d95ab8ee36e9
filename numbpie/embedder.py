"""Inception-V3 image embedder: PIL images in, L2-normalised 2048-d float32 vectors out."""

from __future__ import annotations

import json
import pickle
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file
from torch.fx.experimental.optimization import fuse
from torchvision.models import inception_v3

from numbpie import images as pictures
from numbpie import weights
from numbpie.errors import OptionError
from numbpie.index import normalize
from numbpie.training.loop import cpu_has_bf16

__all__ = ["AGREEMENT", "DIM", "PRECISIONS", "Embedder", "available_models", "build_inception", "default_name",
           "inference_network", "load", "matching", "resolve_precision", "to_batch"]

DIM = 2048
PRECISIONS = ("fp32", "bf16")
AGREEMENT = 0.999  # the lowest cosine at which vectors of two precisions count as the same


def resolve_precision(precision: str = "auto") -> str:
    """"auto" is bf16 where the CPU computes it natively (AVX512-BF16 or AMX), else fp32.

    bf16 embeds 1.8x (128 px) to 3.4x (299 px) faster there with Recall@1 unchanged
    (docs/benchmarks.md); elsewhere it is emulated and slower. "fp32" and "bf16" force one.
    """
    if precision == "auto":
        return "bf16" if cpu_has_bf16() else "fp32"
    if precision not in PRECISIONS:
        raise OptionError(f"Unknown precision {precision!r}; use auto or one of {', '.join(PRECISIONS)}.")
    return precision


def available_models() -> list[str]:
    """Embedder names registered in weights/manifest.json."""
    return weights.names("embedder")


def default_name() -> str:
    """`bundled` once trained weights are registered, else the random stand-in."""
    return "bundled" if "bundled" in available_models() else "random"


def letterbox(image: Image.Image, size: int, fill=(255, 255, 255)) -> Image.Image:
    """Resize keeping the aspect ratio and pad to a `size` square, so fit and length survive."""
    scale = size / max(image.size)
    w, h = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    canvas = Image.new("RGB", (size, size), fill)
    canvas.paste(image.convert("RGB").resize((w, h), Image.BILINEAR), ((size - w) // 2, (size - h) // 2))
    return canvas


def to_batch(images: Sequence[Image.Image], size: int, mean, std) -> np.ndarray:
    """Images -> float32 (N, 3, size, size), letterboxed and normalised with `mean`/`std`."""
    arrays = [np.asarray(letterbox(im, size), dtype=np.float32) / 255.0 for im in images]
    batch = (np.stack(arrays) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


def build_inception(transform_input: bool = False) -> torch.nn.Module:
    """torchvision Inception-V3 with the aux head off and `fc` removed: outputs pooled 2048-d."""
    model = inception_v3(weights=None, aux_logits=False, init_weights=False, transform_input=transform_input)
    model.fc = torch.nn.Identity()
    return model.eval()


def inference_network(model: torch.nn.Module, precision: str, example: torch.Tensor) -> torch.jit.ScriptModule:
    """`model` frozen for inference in `precision`: what `Embedder.embed` runs (the weights are copied).

    Batch norms are folded into their convolutions in fp32, the weights cast once (bf16) and laid
    out channels_last, and the network traced and frozen so that oneDNN Graph fuses convolutions
    with their activations and pools. Under autocast every call cast each weight to bf16 and
    reordered it for oneDNN, and ran the batch norms on their own: a single 128 px query of the
    bundled embedder took p50 24.5 ms that way against 6 ms this way on the 2-core machine (36.8
    against 5.2 ms inside the page's path, docs/benchmarks.md). `example` is a batch in the
    network's dtype and layout; it is run a few times so the first query does not pay for the fusion.
    """
    torch.jit.enable_onednn_fusion(True)  # TorchScript-wide; the embedder is numbpie's only TorchScript
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    with warnings.catch_warnings():  # TorchScript is deprecated in favour of torch.compile, which
        warnings.simplefilter("ignore", FutureWarning)  # took 79 s to compile Inception on these 2 cores
        with torch.no_grad():
            folded = fuse(model.eval()).to(dtype).to(memory_format=torch.channels_last)
            network = torch.jit.freeze(torch.jit.trace(folded, example, check_trace=False))
        with torch.inference_mode():
            for _ in range(3):  # TorchScript profiles the first run and optimises (oneDNN fuses) on the second
                network(example)
    return network


def file_settings(path: Path) -> dict:
    """Preprocessing stored in a safetensors file's metadata by train-embedder: input_size, mean, std."""
    if path.suffix != ".safetensors":
        return {}
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    return {key: json.loads(metadata[key]) for key in ("input_size", "mean", "std") if key in metadata}


def _read_state_dict(path: Path) -> dict:
    if path.suffix == ".safetensors":
        state = load_file(path)
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            raise weights.WeightsError(
                f"{path} holds more than plain tensors (pickled objects); numbpie refuses to "
                "load it. Save a plain state_dict or safetensors file instead."
            ) from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    state = {k.removeprefix("module."): v.float() for k, v in state.items()}
    # The classifier and the auxiliary head are not part of the embedding.
    return {k: v for k, v in state.items() if not k.startswith(("fc.", "AuxLogits."))}


class Embedder:
    """A network plus its preprocessing; `embed` is batched, thread-safe and deterministic."""

    def __init__(self, model: torch.nn.Module, name: str, sha256: str, input_size: int,
                 mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), batch_size: int = 16,
                 precision: str = "fp32"):
        self.precision = resolve_precision(precision)
        self.model = model.eval()  # the network as trained; `embed` runs a frozen copy of it
        self.name, self.sha256 = name, sha256
        self.input_size, self.mean, self.std = input_size, tuple(mean), tuple(std)
        self.batch_size = batch_size
        self.dim = DIM
        self._lock = threading.Lock()
        self._frozen: tuple[torch.nn.Module, torch.jit.ScriptModule] | None = None  # (model, its frozen copy)

    def with_precision(self, precision: str) -> Embedder:
        """The same network and preprocessing run in another precision (the weights are shared)."""
        precision = resolve_precision(precision)
        if precision == self.precision:
            return self
        return Embedder(self.model, self.name, self.sha256, self.input_size, self.mean, self.std,
                        self.batch_size, precision)

    @property
    def identity(self) -> dict:
        """What an index records about the embedder that built it."""
        return {"name": self.name, "sha256": self.sha256, "input_size": self.input_size}

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """float32 (N, 2048) unit rows; a dot product of two rows is their cosine similarity."""
        if not images:
            return np.zeros((0, self.dim), np.float32)
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = self._tensor(to_batch(images[start:start + self.batch_size], self.input_size,
                                          self.mean, self.std))
            # One forward at a time: the intra-op thread pool is shared, concurrent calls just thrash.
            with self._lock:
                network = self._network()
                with torch.inference_mode():
                    out.append(network(batch).float().numpy())
        return normalize(np.concatenate(out))

    def _tensor(self, batch: np.ndarray) -> torch.Tensor:
        """A float32 NCHW batch in the frozen network's dtype and channels_last layout."""
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
        return torch.from_numpy(batch).to(dtype).contiguous(memory_format=torch.channels_last)

    def _network(self) -> torch.jit.ScriptModule:
        """The frozen copy of `self.model` (`inference_network`), made on first use and again if `model` is replaced.

        It holds the weights as they were then: an Embedder over a model still in training is made
        anew after each step that changes them (as numbpie.training.embedder does for validation).
        """
        if self._frozen is None or self._frozen[0] is not self.model:
            example = self._tensor(np.zeros((1, 3, self.input_size, self.input_size), np.float32))
            self._frozen = (self.model, inference_network(self.model, self.precision, example))
        return self._frozen[1]


def load(name_or_path: str | Path | None = None, batch_size: int = 16, precision: str = "auto") -> Embedder:
    """An Embedder from a manifest name (`bundled`, `imagenet`, `random`) or a state_dict path.

    `precision` "bf16" runs the network in bfloat16, "fp32" in float32; "auto" (the default) picks
    bf16 on CPUs with AVX512-BF16 or AMX and fp32 elsewhere.
    """
    name = str(name_or_path or default_name())
    path, entry = weights.resolve("embedder", name)
    if entry and "file" not in entry:  # the random stand-in: seeded, so every process agrees
        torch.manual_seed(entry["seed"])
        model = inception_v3(weights=None, aux_logits=False, init_weights=True)
        model.fc = torch.nn.Identity()
        sha = f"random-seed{entry['seed']}"
    else:
        model = build_inception(transform_input=entry.get("transform_input", False))
        try:
            model.load_state_dict(_read_state_dict(path))
        except (RuntimeError, KeyError) as error:
            raise weights.WeightsError(
                f"{path} is not an Inception-V3 state_dict ({str(error).splitlines()[0]})."
            ) from None
        sha = weights.sha256(path)
        entry = {**file_settings(path), **entry}
    return Embedder(
        model, name if entry else path.name, sha, entry.get("input_size", 299),
        entry.get("mean", (0.485, 0.456, 0.406)), entry.get("std", (0.229, 0.224, 0.225)),
        batch_size, precision,
    )


def matching(embedder: Embedder, index, catalog, sample: int = 8) -> Embedder:
    """`embedder` if its vectors agree with `index`'s, else the same network in the index's precision.

    An index records the precision its vectors were embedded in. Queries of the other one are
    used only once `sample` catalog products, embedded again, each come within a cosine of
    AGREEMENT of their stored vectors (so an index built before bf16 became the default keeps
    its speed-up when it is safe, and stays exact when it is not).
    """
    if index.precision == embedder.precision or not len(index):
        return embedder
    ids = index.ids()
    products = catalog.get(ids[np.linspace(0, len(ids) - 1, min(sample, len(ids))).astype(int)])
    loaded, kept = [], []
    for product in products:
        try:
            loaded.append(pictures.load(product.image))
            kept.append(product.id)
        except pictures.ImageError:  # an image gone since indexing: judge on the others
            continue
    if loaded:
        cosines = np.sum(embedder.embed(loaded) * index.vectors(kept), axis=1)
        if cosines.min() >= AGREEMENT:
            return embedder
    return embedder.with_precision(index.precision)
