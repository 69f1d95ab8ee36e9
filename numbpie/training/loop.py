"""One training loop for every trainer: resume, checkpoints, val-best weights, history, export.

A trainer is a `Task`: its model, data and loss. The loop owns everything else, the same way
for all of them: the run folder, resuming from its checkpoint (or starting from `--init`
weights), periodic checkpoints, validation with the best weights kept, and a history that
`scripts/bundle.py` copies into the manifest. The loop is framework-free (checkpoints are
numpy arrays in safetensors), so the TensorFlow detector and the torch models share it.

Run folder layout::

    checkpoint.safetensors + checkpoint.json   the latest state (json written last)
    best/ + best.json                          exported weights of the best validation score
    history.jsonl                              one line per validation: step, images, figures
    log.jsonl                                  losses every `log_every` steps
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Protocol

import numpy as np
from safetensors.numpy import load_file, save_file

from numbpie.errors import TrainingError

__all__ = [
    "LoopOptions",
    "Task",
    "TrainingError",
    "add_arguments",
    "checkpoint_step",
    "cpu_has_bf16",
    "lr_factor",
    "options_from",
    "read_history",
    "resolve_precision",
    "train",
]


@dataclass
class LoopOptions:
    """What every run has, whatever it trains."""

    out: str = "runs/run"
    steps: int = 1000
    checkpoint_every: int = 200
    eval_every: int = 0  # 0: validate only at the end
    log_every: int = 20
    seed: int = 0
    threads: int = 2
    precision: str = "auto"  # auto (bf16 where the CPU has native bf16), bf16 or fp32
    init: str = ""  # weights to start from when the run folder has no checkpoint ("bundled" or a path)


class Task(Protocol):
    """A model, its data and its loss; everything a trainer writes itself."""

    fixed: dict  # options that fix tensor shapes: a resumed run must keep them
    batch_size: int

    def state(self) -> dict[str, np.ndarray]: ...  # weights + optimiser tensors, for the checkpoint
    def extra(self) -> dict: ...  # JSON-able state beside the tensors (optimiser groups, ...)
    def load_state(self, tensors: dict[str, np.ndarray], extra: dict) -> None: ...
    def init_from(self, source: str) -> None: ...  # start from deployable weights
    def train_step(self, step: int) -> dict[str, float]: ...  # data must depend on step only
    def evaluate(self) -> dict[str, float]: ...  # validation figures; "score" picks the best
    def export(self, folder: Path) -> None: ...  # deployable weight files (with metadata) into folder


def cpu_has_bf16() -> bool:
    """True on CPUs with native bf16 arithmetic (AVX512-BF16 or AMX), where autocast pays off."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str) -> str:
    """'auto' -> 'bf16' or 'fp32' for this CPU; anything else is checked and returned."""
    if precision == "auto":
        return "bf16" if cpu_has_bf16() else "fp32"
    if precision not in ("bf16", "fp32"):
        raise TrainingError(f"--precision must be auto, bf16 or fp32, not {precision!r}.")
    return precision


def lr_factor(step: int, total: int, warmup: float = 0.05) -> float:
    """Linear warm-up then cosine decay to zero; a pure function of the step, so resuming is exact."""
    start = max(1, round(total * warmup))
    if step < start:
        return (step + 1) / start
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - start) / max(1, total - start))))


def _write_json(path: Path, value) -> None:
    path.with_suffix(".part").write_text(json.dumps(value, indent=1))
    os.replace(path.with_suffix(".part"), path)


def _save(folder: Path, task: Task, step: int, options: LoopOptions) -> None:
    """Tensors first, then the JSON that names the step: a kill in between keeps the old step."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: np.asarray(v, order="C") for k, v in task.state().items()}, folder / "checkpoint.part")
    os.replace(folder / "checkpoint.part", folder / "checkpoint.safetensors")
    _write_json(folder / "checkpoint.json", {
        "step": step, "fixed": task.fixed, "options": asdict(options), "extra": task.extra(),
        "saved": time.strftime("%Y-%m-%d %H:%M:%S")})


def _resume(folder: Path, task: Task) -> int:
    """Load the run folder's checkpoint; returns its step (0 without one)."""
    record = folder / "checkpoint.json"
    if not record.is_file():
        return 0
    saved = json.loads(record.read_text())
    changed = {k: (saved["fixed"].get(k), v) for k, v in task.fixed.items() if saved["fixed"].get(k) != v}
    if changed:
        said = ", ".join(f"{k}={old} (now {new})" for k, (old, new) in changed.items())
        raise TrainingError(f"{folder} was trained with other sizes: {said}; pass the same options or a new --out.")
    task.load_state(load_file(folder / "checkpoint.safetensors"), saved["extra"])
    return int(saved["step"])


def checkpoint_step(folder: str | Path) -> int:
    """The step of the run folder's checkpoint (0 without one)."""
    record = Path(folder) / "checkpoint.json"
    return int(json.loads(record.read_text())["step"]) if record.is_file() else 0


def read_history(folder: str | Path) -> list[dict]:
    """The validation lines of a run folder, oldest first."""
    path = Path(folder) / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.is_file() else []


def _validate(folder: Path, task: Task, step: int, options: LoopOptions, log) -> dict:
    """Validation figures; the weights are exported into best/ when the score is the best yet."""
    figures = task.evaluate()
    row = {"step": step, "images": step * task.batch_size, "time": time.strftime("%Y-%m-%d %H:%M:%S"), **figures}
    with (folder / "history.jsonl").open("a") as handle:
        handle.write(json.dumps(row) + "\n")
    best_path = folder / "best.json"
    best = json.loads(best_path.read_text()) if best_path.is_file() else {"score": -math.inf}
    shown = " ".join(f"{k} {v:.4f}" for k, v in figures.items() if isinstance(v, float))
    log(f"step {step} val {shown} (best {best['score']:.4f})")
    if figures["score"] > best["score"]:
        (folder / "best").mkdir(exist_ok=True)
        task.export(folder / "best")
        _write_json(best_path, row)
    return figures


def train(task: Task, options: LoopOptions, log=print, progress: bool = True) -> int:
    """Run (or resume) `task` to `options.steps`; returns the step reached."""
    from tqdm import tqdm

    folder = Path(options.out)
    folder.mkdir(parents=True, exist_ok=True)
    start = _resume(folder, task)
    if start:
        log(f"resumed {folder} at step {start}")
    elif options.init:
        task.init_from(options.init)
        log(f"started from {options.init}")
    bar = tqdm(total=options.steps, initial=start, desc=folder.name, unit="step", disable=not progress)
    for step in range(start, options.steps):
        losses = task.train_step(step)
        done = step + 1
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
        last = done == options.steps
        if done % options.log_every == 0 or last:
            with (folder / "log.jsonl").open("a") as handle:
                handle.write(json.dumps({"step": done, "time": round(time.time(), 1), **losses}) + "\n")
        if done % options.checkpoint_every == 0 or last:
            _save(folder, task, done, options)
        if (options.eval_every and done % options.eval_every == 0) or last:
            _validate(folder, task, done, options, log)
    bar.close()
    return max(start, options.steps)


# ---------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser, defaults) -> None:
    """One --flag per field of the `defaults` dataclass (its value as default, `help` from HELP)."""
    helps = getattr(defaults, "HELP", {})
    for field in fields(defaults):
        value = getattr(defaults, field.name)
        flag = f"--{field.name.replace('_', '-')}"
        if field.name == "data":
            parser.add_argument(flag, required=True, help=helps.get("data", "a dataset from `numbpie synth`"))
        elif isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value,
                                help=f"{helps.get(field.name, '')} (default {value})".strip())
        else:
            parser.add_argument(flag, type=type(value), default=value,
                                help=f"{helps.get(field.name, '')} (default {value})".strip())
    parser.add_argument("--export", default=None, help="after training, copy the best weights here")


def options_from(args: argparse.Namespace, cls):
    """The `cls` dataclass filled from parsed arguments."""
    return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})
