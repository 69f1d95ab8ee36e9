"""Train the SSD on synthetic street photos: `python -m detector.train --data DIR --out RUN`.

Runs on the shared loop (numbpie.training.loop): a run folder resumes by itself, checkpoints
hold the Keras and Adam variables as numpy arrays, and validation (mAP@0.5 on the dataset's
val split) keeps the best frozen graph in RUN/best/detector.pb. Training stays fp32: the
exported frozen graph is what the app and numbpie's original-SSD loader run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from detector._tf import tf
from detector.dataset import batches, load_coco, resolve_annotations
from detector.export import export_graph, weights_from_graph
from detector.graph import export_meta, read_graph_def
from detector.loss import ssd_loss
from detector.model import SSDConfig, build_ssd
from numbpie import weights
from numbpie.errors import TrainingError
from numbpie.training import loop

__all__ = ["Adam", "DetectorTask", "build_parser", "main", "train"]


def build_parser() -> argparse.ArgumentParser:
    """Command-line options; the run folder records them in checkpoint.json."""
    parser = argparse.ArgumentParser(prog="python -m detector.train", description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True,
                        help="folder with street.json (COCO boxes) and its images, or the JSON itself")
    parser.add_argument("--split", default="train", help="images whose 'split' field is this (all if none has one)")
    parser.add_argument("--val-split", default="val", help="images to validate on ('' : the training images)")
    parser.add_argument("--out", default="runs/detector", help="run folder: checkpoints, history, best/")
    parser.add_argument("--steps", type=int, default=3000, help="optimizer steps in total (a resumed run counts on)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per step")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (cosine decay to 0)")
    parser.add_argument("--input-size", type=int, default=256, help="network input side in pixels")
    parser.add_argument("--width", type=float, default=1.0, help="backbone width multiplier")
    parser.add_argument("--checkpoint-every", "--save-every", type=int, default=250, help="steps between checkpoints")
    parser.add_argument("--eval-every", type=int, default=0, help="steps between validations (0: at the end)")
    parser.add_argument("--seed", type=int, default=0, help="seed for weights and augmentation")
    parser.add_argument("--threads", type=int, default=0,
                        help="TensorFlow threads (0: its own choice, every core); one each when two runs share 2 cores")
    parser.add_argument("--resume", action="store_true", help="ignored: a run folder always resumes")
    parser.add_argument("--init", default="",
                        help="'bundled' or a frozen graph we exported, to start from when --out has no checkpoint "
                             "(its input size and width must match)")
    parser.add_argument("--export", default="detector.pb",
                        help="frozen graph of the final weights written in --out ('' to skip)")
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


def _variables(model, optimizer) -> list[tf.Variable]:
    """Every variable a checkpoint holds, in a fixed order for a fixed configuration."""
    return [*model.variables, *optimizer.first, *optimizer.second, optimizer.step]


class DetectorTask:
    """The SSD's model, data and loss for `loop.train`."""

    def __init__(self, args: argparse.Namespace):
        self.args, self.batch_size = args, args.batch_size
        self.config = SSDConfig(input_size=args.input_size, width=args.width)
        self.fixed = {"input_size": args.input_size, "width": args.width}
        self.samples = load_coco(resolve_annotations(args.data), self.config.class_names, args.split)
        self.priors = self.config.priors()
        self.model = build_ssd(self.config, seed=args.seed)
        self.optimizer = Adam(self.model.trainable_variables, args.lr, args.steps, min(200, args.steps // 10))
        self._step = _train_step(self.model, self.optimizer)
        self.losses: list[float] = []  # total loss of every step this process ran

    def state(self) -> dict[str, np.ndarray]:
        return {f"v{n:04d}": v.numpy() for n, v in enumerate(_variables(self.model, self.optimizer))}

    def extra(self) -> dict:
        return {"config": json.loads(self.config.to_json())}

    def load_state(self, tensors, extra) -> None:
        for n, variable in enumerate(_variables(self.model, self.optimizer)):
            variable.assign(tensors[f"v{n:04d}"])

    def init_from(self, source: str) -> None:
        """Start from the weights in a frozen graph of ours (the bundled detector ships only as one)."""
        path, _ = weights.resolve("detector", source)
        graph_def = read_graph_def(path)
        meta = export_meta(graph_def)
        if meta is None:
            raise TrainingError(f"{path} is not a numbpie detector export, so it cannot seed training.")
        config = meta["config"]
        if (config["input_size"], config["width"]) != (self.config.input_size, self.config.width):
            raise TrainingError(f"{source} takes {config['input_size']} px at width {config['width']}; "
                                f"pass --input-size {config['input_size']} --width {config['width']}.")
        for variable, value in zip(self.model.variables, weights_from_graph(graph_def, self.model), strict=True):
            variable.assign(value)

    def train_step(self, step: int) -> dict[str, float]:
        rng = np.random.default_rng([self.args.seed, step])  # the data is a function of the step
        data = next(batches(self.samples, self.priors, self.config.input_size, self.batch_size, rng))
        total, cls_loss, loc_loss = (float(v) for v in self._step(*data))
        self.losses.append(total)
        return {"loss": total, "cls": cls_loss, "box": loc_loss}

    def evaluate(self) -> dict[str, float]:
        """mAP@0.5 and mean IoU of the frozen graph on the validation images."""
        import detector
        from detector.evaluate import evaluate

        with tempfile.TemporaryDirectory() as folder:
            graph = export_graph(self.model, self.config, Path(folder) / "detector.pb")
            figures = evaluate(detector.load(graph), self.args.data, split=self.args.val_split or self.args.split)
        return {"map50": figures["map50"], "mean_iou": figures["mean_iou"], "score": figures["map50"]}

    def export(self, folder: Path) -> None:
        export_graph(self.model, self.config, folder / "detector.pb")


def train(args: argparse.Namespace) -> dict:
    """Run (or resume) training as `args` says; returns the losses, the step and the export path."""
    if args.threads:  # before TensorFlow runs its first op (TensorFlow refuses it after)
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    task = DetectorTask(args)
    options = loop.LoopOptions(out=args.out, steps=args.steps, checkpoint_every=args.checkpoint_every,
                               eval_every=args.eval_every, seed=args.seed, precision="fp32", init=args.init)
    reached = loop.train(task, options)
    exported = export_graph(task.model, task.config, Path(args.out) / args.export) if args.export else None
    return {"first_loss": task.losses[0] if task.losses else None,
            "last_loss": task.losses[-1] if task.losses else None,
            "steps": reached, "export": str(exported) if exported else None,
            "threads": tf.config.threading.get_intra_op_parallelism_threads()}


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    print(json.dumps(train(build_parser().parse_args(argv))))


if __name__ == "__main__":
    main()
