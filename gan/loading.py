"""Load and save generators: our safetensors files and the original fashion_gan `.pth` files."""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from numbpie.weights import DOWNLOADS_DIR, WeightsError, entry, names, resolve

from .editor import FASHION_GAN_LABELS, Editor, Layout, StyleEditor, encode_label
from .models import Generator, ResnetGenerator, UnetGenerator
from .prints import HOUSE_PRINTS
from .tagunet import FixedTags, TagUnet, widen_output

__all__ = ["IMAGE_SIZES", "build", "detect", "load", "load_bundled", "load_fashion_gan", "pattern_editors", "read_weights", "save"]

# Input size each family was trained at in fashion_gan; our files record their own.
IMAGE_SIZES = {"stargan": 128, "cyclegan": 256, "pix2pix": 256}
_BUILDERS = {"stargan": Generator, "cyclegan": ResnetGenerator, "pix2pix": UnetGenerator}
_WEIGHT_SUFFIXES = (".pth", ".pt", ".safetensors")


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A state_dict and its metadata from a `.safetensors` file or a plain-tensor `.pth` file."""
    path = Path(path)
    if path.suffix == ".safetensors":
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
        return load_file(str(path)), metadata
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise WeightsError(
            f"{path} holds more than plain tensors (unpickling it could run code), so it was not "
            "loaded; use the original file or a .safetensors export."
        ) from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise WeightsError(f"{path} is not a state_dict of tensors.")
    return {k.removeprefix("module."): v for k, v in state.items()}, {}


def detect(state: Mapping[str, torch.Tensor]) -> tuple[str, dict[str, int]]:
    """The family of a generator state_dict and the size arguments its shapes imply."""
    if "main.0.weight" in state and state["main.0.weight"].ndim == 4:
        blocks = {k.split(".")[1] for k in state if re.fullmatch(r"main\.\d+\.main\.0\.weight", k)}
        first = state["main.0.weight"]
        return "stargan", {
            "conv_dim": first.shape[0],
            "c_dim": first.shape[1] - 3,
            "repeat_num": len(blocks),
        }
    if "model.1.weight" in state and any(".conv_block." in k for k in state):
        blocks = {
            k.split(".")[1] for k in state if re.fullmatch(r"model\.\d+\.conv_block\.1\.weight", k)
        }
        last = max(
            (k for k in state if re.fullmatch(r"model\.\d+\.weight", k)),
            key=lambda k: int(k.split(".")[1]),
        )
        first = state["model.1.weight"]
        return "cyclegan", {
            "input_nc": first.shape[1],
            "output_nc": state[last].shape[0],
            "ngf": first.shape[0],
            "n_blocks": len(blocks),
        }
    if "model.model.0.weight" in state:
        downs = [
            k for k in state if re.fullmatch(r"model\.model\.1\.(model\.3\.)*model\.1\.weight", k)
        ]
        first = state["model.model.0.weight"]
        return "pix2pix", {
            "input_nc": first.shape[1],
            "output_nc": state["model.model.3.weight"].shape[1],
            "num_downs": len(downs) + 1,
            "ngf": first.shape[0],
        }
    raise WeightsError(
        "These weights are not a StarGAN, CycleGAN or pix2pix generator "
        f"(first keys: {', '.join(list(state)[:3])})."
    )


def build(family: str, config: Mapping[str, int]) -> nn.Module:
    """A generator of `family` with size arguments `config`, randomly initialised."""
    if family not in _BUILDERS:
        raise ValueError(f"Unknown GAN family {family!r}; valid ones are: {', '.join(_BUILDERS)}.")
    return _BUILDERS[family](**config)


def _layout(labels, metadata: Mapping[str, str], stem: str, c_dim: int) -> Layout:
    if labels is None and "layout" in metadata:
        labels = {name: values for name, values in json.loads(metadata["layout"])}
    # fashion_gan names its StarGANs after the attribute ('sleeve_length.pth'); sleeve_length
    # is tried before length.
    named = next((a for a in FASHION_GAN_LABELS if a in stem.lower().replace("-", "_")), None)
    if labels is None and named and len(FASHION_GAN_LABELS[named]) == c_dim:
        labels = {named: FASHION_GAN_LABELS[named]}
    layout = tuple((name, tuple(values)) for name, values in dict(labels or {}).items())
    if layout and sum(len(values) for _, values in layout) != c_dim:
        raise WeightsError(
            f"The labels {dict(layout)} do not add up to this StarGAN's c_dim {c_dim}."
        )
    return layout


_IN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _fill(net: nn.Module, state: Mapping[str, torch.Tensor], family: str, mismatch: str) -> None:
    """Load `state` into `net`, or raise a WeightsError starting with `mismatch`."""
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError:  # a shape mismatch
        raise WeightsError(f"{mismatch}.") from None
    if family == "cyclegan":  # newer CycleGAN files drop the (unused) instance-norm buffers
        missing = [k for k in missing if k.rsplit(".", 1)[1] not in _IN_BUFFERS]
    if missing or unexpected:
        raise WeightsError(f"{mismatch} (missing {missing[:3]}, unexpected {unexpected[:3]}).")


def load(
    name_or_path: str | Path,
    family: str | None = None,
    labels: Mapping[str, Sequence[str]] | None = None,
    image_size: int | None = None,
) -> Editor:
    """A generator in eval mode with its preprocessing, from a registered name or a weights file.

    The family and sizes come from the keys and shapes; `labels` ({attribute: values in one-hot
    order}) overrides a StarGAN's label layout, which otherwise comes from the file's metadata or
    from a fashion_gan file name (`fit.pth`).
    """
    if Path(name_or_path).is_dir():
        raise WeightsError(
            f"{name_or_path} is a folder; load a set of editors with gan.load_fashion_gan(folder)."
        )
    path, entry = resolve("gan", name_or_path)
    state, metadata = read_weights(path)
    if metadata.get("arch") == "tagunet":
        return _load_tagunet(path, entry, state, metadata, family, image_size)
    found, config = detect(state)
    if metadata.get("residual") == "1":  # a change-predicting generator (see gan.models)
        config["residual"] = True
    if family is not None and family != found:
        raise WeightsError(f"{path} holds a {found} generator, not a {family} one.")
    net = build(found, config)
    _fill(net, state, found, f"{path} does not match a {found} generator of sizes {config}")
    size = (
        image_size or entry.get("image_size") or int(metadata.get("image_size", IMAGE_SIZES[found]))
    )
    layout = (
        _layout(labels or entry.get("labels"), metadata, path.stem, config.get("c_dim", 0))
        if found == "stargan"
        else ()
    )
    name = metadata.get("name") or entry.get("name") or path.stem
    return Editor(found, net.eval().requires_grad_(False), int(size), layout, name)


def _load_tagunet(path: Path, entry: Mapping, state, metadata, family, image_size) -> Editor:
    """An Editor around a TagUnet file (shape: StarGAN-style; pattern: a fixed target, CycleGAN-style)."""
    found = metadata.get("family", "stargan")
    if family is not None and family != found:
        raise WeightsError(f"{path} holds a {found} editor, not a {family} one.")
    unet = TagUnet(**json.loads(metadata["config"]))
    if unet.prints and metadata.get("house_prints") != HOUSE_PRINTS:
        raise WeightsError(f"{path} was trained on house prints version {metadata.get('house_prints')}, and this "
                           f"code draws version {HOUSE_PRINTS}; retrain it (python -m gan.train tagunet --edits pattern).")
    net: nn.Module = FixedTags(unet, json.loads(metadata["condition"])) if "condition" in metadata else unet
    # files from before the blend outputs load as the same function
    state = widen_output(dict(state), unet.out.out_channels)
    _fill(net, state, found, f"{path} does not match a TagUnet of sizes {metadata['config']}")
    layout = tuple((name, tuple(values)) for name, values in json.loads(metadata.get("layout", "[]")))
    size = int(image_size or entry.get("image_size") or metadata["image_size"])
    name = metadata.get("name") or entry.get("name") or path.stem
    return Editor(found, net.eval().requires_grad_(False), size, layout, name)


def pattern_editors(editor: Editor) -> dict[str, Editor]:
    """The four CycleGAN-style directions of one pattern TagUnet, sharing its network."""
    out = {}
    for pattern in ("floral", "stripes"):
        for direction, target in (("add", pattern), ("remove", "solid")):
            net = FixedTags(editor.net, encode_label({"pattern": target}, editor.layout))
            out[f"{pattern}_{direction}"] = Editor("cyclegan", net.eval(), editor.image_size, name=f"{pattern}_{direction}")
    return out


_EXPORT_ROLES = {"stargan/shape.safetensors": "stargan", "pix2pix.safetensors": "pix2pix",
                 "cyclegan/pattern.safetensors": "pattern"}


def load_bundled(rel: str) -> Editor:
    """The bundled editor whose manifest role matches an export path of gan.train (for --init)."""
    role = _EXPORT_ROLES.get(rel) or f"cyclegan:{Path(rel).stem}"
    for name in names("gan"):
        if entry("gan", name).get("role") == role:
            return load(name)
    raise WeightsError(f"No bundled editor has the role {role!r} (for {rel}); start without --init bundled.")


def _tagunet_metadata(net: nn.Module) -> dict[str, str]:
    """The file metadata that rebuilds a TagUnet (and a FixedTags target) without pickle."""
    if isinstance(net, FixedTags):
        return {**_tagunet_metadata(net.net), "condition": json.dumps(net.label[0].tolist())}
    prints = {"house_prints": HOUSE_PRINTS} if net.prints else {}
    return {"arch": "tagunet", "config": json.dumps(net.config), **prints}


def save(editor: Editor, path: str | Path) -> Path:
    """Write an editor's generator to `.safetensors` with its family, sizes, input size and labels."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tagunet = isinstance(editor.net, TagUnet | FixedTags)
    # TagUnet files are stored in fp16 (half the bytes; they load into fp32 networks).
    state = {k: (v.half() if tagunet and v.is_floating_point() else v).detach().contiguous().cpu()
             for k, v in editor.net.state_dict().items()}
    config = {} if tagunet else detect(state)[1]
    metadata = {
        "family": editor.family,
        "config": json.dumps(config),
        "image_size": str(editor.image_size),
        "layout": json.dumps([[name, list(values)] for name, values in editor.layout]),
        "name": editor.name,
        "residual": "1" if getattr(editor.net, "residual", False) else "0",
        "mean": "0.5,0.5,0.5",
        "std": "0.5,0.5,0.5",
        **(_tagunet_metadata(editor.net) if tagunet else {}),
    }
    save_file(state, str(path), metadata)
    return path


def _weight_files(folder: Path) -> list[Path]:
    return (
        sorted(p for p in folder.glob("*") if p.suffix in _WEIGHT_SUFFIXES)
        if folder.is_dir()
        else []
    )


def load_fashion_gan(models_dir: str | Path | None = None, tagger=None) -> StyleEditor:
    """A StyleEditor from a fashion_gan `models/` folder (or ours, laid out the same way).

    Layout: stargan/<attribute>.pth, cyclegan/<floral|stripes>/*add*.pth and *remove*.pth,
    pix2pix_models.pth (`.safetensors` works in place of `.pth`). Where several files serve one
    CycleGAN direction, the first by name is used, so edits are repeatable. Without
    `models_dir`, the folder scripts/download_data.sh unpacks models.zip into is used.
    """
    if models_dir is None:
        models_dir = DOWNLOADS_DIR / entry("data", "fashion_gan_models")["unpack_to"]
    root = Path(models_dir)
    if not (root / "stargan").is_dir() and (root / "models").is_dir():
        root = root / "models"  # the folder models.zip was unzipped into
    stargan = [load(p, family="stargan") for p in _weight_files(root / "stargan")]
    cyclegan = {}
    one_file = [p for p in _weight_files(root / "cyclegan") if p.stem == "pattern"]
    if one_file:  # our pattern TagUnet: every direction from one network
        cyclegan.update(pattern_editors(load(one_file[0])))
    for pattern in ("floral", "stripes"):
        files = _weight_files(root / "cyclegan" / pattern)
        for direction in ("add", "remove"):
            chosen = [p for p in files if direction in p.stem.lower()]
            if chosen and f"{pattern}_{direction}" not in cyclegan:
                cyclegan[f"{pattern}_{direction}"] = load(chosen[0], family="cyclegan")
    pix2pix = next(
        (p for p in (root / "pix2pix_models.pth", root / "pix2pix.safetensors") if p.is_file()),
        None,
    )
    if not stargan and not cyclegan and pix2pix is None:
        raise WeightsError(
            f"No GAN weights found in {root}; expected stargan/, cyclegan/ or pix2pix_models.pth "
            "(scripts/download_data.sh --only data/fashion_gan_models fetches fashion_gan's)."
        )
    pix2pix = load(pix2pix, family="pix2pix") if pix2pix else None
    return StyleEditor(stargan=stargan, cyclegan=cyclegan, pix2pix=pix2pix, tagger=tagger)
