"""Train the SSD on synthetic street photos: `python -m detector.train --data DIR --out RUN`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from detector._tf import tf
from detector.dataset import batches, load_coco, resolve_annotations
from detector.export import export_graph
from detector.loss import ssd_loss
from detector.model import SSDConfig, build_ssd

__all__ = ["Adam", "build_parser", "main", "train"]


def build_parser() -> argparse.ArgumentParser:
    """Command-line options; every one is saved to RUN/options.json."""
    parser = argparse.ArgumentParser(prog="python -m detector.train", description=__doc__)
    parser.add_argument(
        "--data",
        required=True,
        help="folder with street.json (COCO boxes) and its images, or the JSON itself",
    )
    parser.add_argument(
        "--split", default="train", help="images whose 'split' field is this (all if none has one)"
    )
    parser.add_argument(
        "--out", default="runs/detector", help="run folder: checkpoints, options, export"
    )
    parser.add_argument(
        "--steps", type=int, default=3000, help="optimizer steps in total (resume counts on)"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="images per step")
    parser.add_argument(
        "--lr", type=float, default=2e-3, help="peak learning rate (cosine decay to 0)"
    )
    parser.add_argument("--input-size", type=int, default=256, help="network input side in pixels")
    parser.add_argument("--width", type=float, default=1.0, help="backbone width multiplier")
    parser.add_argument("--save-every", type=int, default=250, help="steps between checkpoints")
    parser.add_argument("--seed", type=int, default=0, help="seed for weights and augmentation")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the latest checkpoint in --out"
    )
    parser.add_argument(
        "--export",
        default="detector.pb",
        help="frozen graph written in --out at the end ('' to skip)",
    )
    return parser


class Adam(tf.Module):
    """Adam with linear warm-up then cosine decay; plain TF ops, so tf.function traces it fast."""

    def __init__(self, variables, lr: float, total_steps: int, warmup_steps: int):
        super().__init__(name="adam")
        self.params = list(variables)
        self.first = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.params]
        self.second = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.params]
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.lr, self.total, self.warmup = lr, float(total_steps), float(max(warmup_steps, 1))

    def learning_rate(self) -> tf.Tensor:
        """The rate for the coming step."""
        step = tf.cast(self.step, tf.float32) + 1.0
        progress = tf.clip_by_value(
            (step - self.warmup) / max(self.total - self.warmup, 1.0), 0.0, 1.0
        )
        cosine = 0.5 * (1.0 + tf.cos(np.pi * progress))
        return self.lr * tf.minimum(step / self.warmup, 1.0) * cosine

    def apply(self, grads, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-7) -> None:
        """One update of every parameter."""
        rate = self.learning_rate()
        self.step.assign_add(1)
        count = tf.cast(self.step, tf.float32)
        rate = rate * tf.sqrt(1.0 - beta2**count) / (1.0 - beta1**count)
        for param, grad, first, second in zip(
            self.params, grads, self.first, self.second, strict=True
        ):
            first.assign(beta1 * first + (1.0 - beta1) * grad)
            second.assign(beta2 * second + (1.0 - beta2) * tf.square(grad))
            param.assign_sub(rate * first / (tf.sqrt(second) + eps))


def _train_step(model, optimizer: Adam):
    @tf.function(reduce_retracing=True)
    def step(images, labels, offsets):
        with tf.GradientTape() as tape:
            logits, predicted = model(tf.cast(images, tf.float32), training=True)
            total, cls_loss, loc_loss = ssd_loss(labels, offsets, logits, predicted)
        optimizer.apply(tape.gradient(total, model.trainable_variables))
        return total, cls_loss, loc_loss

    return step


def _prepare_run(args, config: SSDConfig) -> Path:
    """Create the run folder, refuse to overwrite a run by accident, save the options."""
    out = Path(args.out)
    has_checkpoint = tf.train.latest_checkpoint(str(out / "ckpt")) is not None
    if has_checkpoint and not args.resume:
        raise SystemExit(
            f"{out} already has checkpoints; pass --resume to continue or pick another --out."
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "options.json").write_text(json.dumps(vars(args), indent=2))
    (out / "config.json").write_text(config.to_json())
    return out


def train(args: argparse.Namespace) -> dict:
    """Run training as `args` says; returns the first and last logged losses and the export path."""
    config = SSDConfig(input_size=args.input_size, width=args.width)
    saved = Path(args.out) / "config.json"
    if args.resume and saved.is_file():  # the network must match its checkpoint
        config = SSDConfig.from_json(saved.read_text())
    out = _prepare_run(args, config)
    samples = load_coco(resolve_annotations(args.data), config.class_names, args.split)
    model = build_ssd(config, seed=args.seed)
    optimizer = Adam(model.trainable_variables, args.lr, args.steps, min(200, args.steps // 10))
    step_count = optimizer.step
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(checkpoint, str(out / "ckpt"), max_to_keep=2)
    if args.resume and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint)
    rng = np.random.default_rng(args.seed + int(step_count.numpy()))
    data = batches(samples, config.priors(), config.input_size, args.batch_size, rng)
    step = _train_step(model, optimizer)
    history = []
    bar = tqdm(range(int(step_count.numpy()), args.steps), desc="detector", unit="step")
    for _ in bar:
        total, cls_loss, loc_loss = (float(v) for v in step(*next(data)))
        history.append(total)
        bar.set_postfix(loss=f"{total:.3f}", cls=f"{cls_loss:.3f}", box=f"{loc_loss:.3f}")
        if int(step_count.numpy()) % args.save_every == 0:
            manager.save(checkpoint_number=step_count)
    manager.save(checkpoint_number=step_count)
    exported = export_graph(model, config, out / args.export) if args.export else None
    return {
        "first_loss": history[0] if history else None,
        "last_loss": history[-1] if history else None,
        "steps": int(step_count.numpy()),
        "export": str(exported) if exported else None,
    }


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    print(json.dumps(train(build_parser().parse_args(argv))))


if __name__ == "__main__":
    main()
