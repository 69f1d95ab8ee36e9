"""Torch pieces of the training loop: checkpoint tensors, bf16 autocast, channels_last."""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

__all__ = ["autocast", "load_modules", "load_optimizers", "module_state", "optimizer_state", "prepare"]


def module_state(modules: dict[str, nn.Module]) -> dict[str, np.ndarray]:
    """Every module's state_dict as fp32/int numpy arrays under '<name>.<key>'."""
    out = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            value = value.detach().cpu()
            out[f"{name}.{key}"] = (value.float() if value.is_floating_point() else value).numpy()
    return out


def load_modules(modules: dict[str, nn.Module], tensors: dict[str, np.ndarray]) -> None:
    """Inverse of `module_state`."""
    for name, module in modules.items():
        prefix = f"{name}."
        module.load_state_dict({k[len(prefix):]: torch.from_numpy(v.copy()) for k, v in tensors.items()
                                if k.startswith(prefix)})


def optimizer_state(optimizers: dict[str, torch.optim.Optimizer]) -> tuple[dict[str, np.ndarray], dict]:
    """Optimiser tensors as numpy arrays ('optim.<name>.<param>.<field>') and their JSON param groups."""
    tensors, groups = {}, {}
    for name, optimizer in optimizers.items():
        state = optimizer.state_dict()
        groups[name] = state["param_groups"]
        for index, values in state["state"].items():
            for field, value in values.items():
                tensors[f"optim.{name}.{index}.{field}"] = torch.as_tensor(value).detach().cpu().numpy()
    return tensors, groups


def load_optimizers(optimizers: dict[str, torch.optim.Optimizer], tensors: dict[str, np.ndarray],
                    groups: dict) -> None:
    """Inverse of `optimizer_state`; how the step runs (fused, foreach) stays this optimiser's, not the file's."""
    for name, optimizer in optimizers.items():
        for saved, mine in zip(groups[name], optimizer.param_groups, strict=True):
            saved.update({key: mine[key] for key in ("fused", "foreach") if key in mine})
        state: dict[int, dict] = {}
        prefix = f"optim.{name}."
        for key, value in tensors.items():
            if key.startswith(prefix):
                index, field = key[len(prefix):].split(".", 1)
                state.setdefault(int(index), {})[field] = torch.from_numpy(value.copy())
        optimizer.load_state_dict({"state": state, "param_groups": groups[name]})


def autocast(precision: str):
    """bf16 autocast on the CPU for 'bf16'; nothing for 'fp32'."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare(module: nn.Module, precision: str) -> nn.Module:
    """channels_last for bf16 (oneDNN's fast layout on CPUs); unchanged for fp32."""
    return module.to(memory_format=torch.channels_last) if precision == "bf16" else module


def rng_state() -> np.ndarray:
    """Torch's CPU generator state (dropout, random init), saved with a checkpoint."""
    return torch.get_rng_state().numpy()


def set_rng_state(state: np.ndarray) -> None:
    torch.set_rng_state(torch.from_numpy(state.copy()))
