"""Export a trained SSD to one frozen GraphDef: uint8 image in, boxes/scores/labels after NMS out."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from tensorflow.python.framework import tensor_util
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from detector._tf import keras, tf
from detector.anchors import PRIOR_SCALING
from detector.graph import META_NODE
from detector.model import SSDConfig, build_ssd
from numbpie.errors import TrainingError, UserError

__all__ = ["export_graph", "freeze", "serving_function", "weights_from_graph"]

# Freezing names each variable's constant after the op that read it, in its layer's scope
# (".../stem_bn_1/Cast_2/ReadVariableOp/resource"): which op reads which variable.
READ_BY = {"convolution": "kernel", "depthwise": "kernel", "Reshape": "bias",
           "Cast": "moving_mean", "Cast_1": "moving_variance", "Cast_2": "gamma", "Cast_3": "beta"}
_CONSTANT = re.compile(r"[^/]+/(?P<scope>[^/]+)/(?P<op>[^/]+)/ReadVariableOp/resource")


def _decode(offsets: tf.Tensor, priors: tf.Tensor) -> tf.Tensor:
    """TF twin of anchors.decode, so NMS runs inside the graph."""
    scaling = tf.constant(PRIOR_SCALING, tf.float32)
    centre = priors[:, :2] + offsets[:, :2] * scaling[:2] * priors[:, 2:]
    size = priors[:, 2:] * tf.exp(tf.minimum(offsets[:, 2:] * scaling[2:], 10.0))
    return tf.concat([centre - size / 2, centre + size / 2], -1)


def serving_function(
    model: keras.Model,
    config: SSDConfig,
    max_detections: int = 20,
    iou_threshold: float = 0.45,
    min_score: float = 0.05,
):
    """A tf.function: uint8 (H, W, 3) -> {boxes (N, 4) pixels x0y0x1y1, scores (N,), labels (N,)}."""
    priors = tf.constant(config.priors())
    size = config.input_size

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8, name="image")])
    def detect(image):
        shape = tf.cast(tf.shape(image), tf.float32)
        batch = tf.image.resize(tf.cast(image, tf.float32)[None], [size, size], antialias=True)
        logits, offsets = model(batch, training=False)
        scores = tf.nn.softmax(logits[0])[:, 1:]
        boxes = _decode(offsets[0], priors)
        result = tf.image.combined_non_max_suppression(
            boxes[None, :, None, :],
            scores[None],
            max_output_size_per_class=max_detections,
            max_total_size=max_detections,
            iou_threshold=iou_threshold,
            score_threshold=min_score,
            clip_boxes=True,
        )
        count = result.valid_detections[0]
        scale = tf.stack([shape[1], shape[0], shape[1], shape[0]])
        return {
            "boxes": tf.identity(result.nmsed_boxes[0, :count] * scale, name="boxes"),
            "scores": tf.identity(result.nmsed_scores[0, :count], name="scores"),
            "labels": tf.identity(
                tf.cast(result.nmsed_classes[0, :count], tf.int32) + 1, name="labels"
            ),
        }

    return detect


def freeze(
    model: keras.Model, config: SSDConfig, threshold: float = 0.5, **nms
) -> tf.compat.v1.GraphDef:
    """The serving function as a GraphDef with variables folded into constants and a meta node."""
    concrete = serving_function(model, config, **nms).get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete)
    graph_def = frozen.graph.as_graph_def()
    # tf.nest flattens a dict in sorted key order, which is the order of frozen.outputs.
    keys = sorted(concrete.structured_outputs)
    outputs = {key: tensor.name for key, tensor in zip(keys, frozen.outputs, strict=True)}
    meta = {
        "format": "numbpie-ssd/1",
        "input": frozen.inputs[0].name,
        "outputs": outputs,
        "class_names": list(config.class_names),
        "threshold": threshold,
        "config": json.loads(config.to_json()),
    }
    node = graph_def.node.add()
    node.name, node.op = META_NODE, "Const"
    node.attr["dtype"].type = tf.string.as_datatype_enum
    node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(json.dumps(meta)))
    return graph_def


def weights_from_graph(graph_def: tf.compat.v1.GraphDef, model: keras.Model) -> list[np.ndarray]:
    """The values of `model.variables` read back from a graph `freeze` made of a model built alike.

    What lets a training run start from the bundled detector, which ships only as a frozen graph.
    """
    found: dict[tuple[str, str], np.ndarray] = {}
    for node in graph_def.node:
        match = _CONSTANT.fullmatch(node.name) if node.op == "Const" else None
        if match and match["op"] in READ_BY:
            scope = re.sub(r"_\d+$", "", match["scope"])
            found[scope, READ_BY[match["op"]]] = tensor_util.MakeNdarray(node.attr["value"].tensor)
    values = []
    for variable in model.variables:
        layer, name = variable.path.split("/")[-2:]
        value = found.get((layer, name))
        if value is None or tuple(value.shape) != tuple(variable.shape):
            raise TrainingError(f"The frozen graph holds no {tuple(variable.shape)} value for {variable.path}: "
                                "it was not exported from a detector built with these settings.")
        values.append(value)
    return values


def export_graph(model: keras.Model, config: SSDConfig, path: str | Path, **options) -> Path:
    """Write the frozen detector to `path` (a .pb file) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(freeze(model, config, **options).SerializeToString())
    return path


def main(argv: list[str] | None = None) -> None:
    """CLI: export the latest checkpoint of a training run to a frozen .pb."""
    parser = argparse.ArgumentParser(prog="python -m detector.export", description=main.__doc__)
    parser.add_argument(
        "--run", required=True, help="training output folder (has config.json, ckpt/)"
    )
    parser.add_argument("--out", required=True, help="where to write the frozen .pb")
    parser.add_argument("--threshold", type=float, default=0.5, help="default score threshold")
    args = parser.parse_args(argv)
    run = Path(args.run)
    config = SSDConfig.from_json((run / "config.json").read_text())
    model = build_ssd(config)
    latest = tf.train.latest_checkpoint(str(run / "ckpt"))
    if latest is None:
        raise TrainingError(f"No checkpoint in {run / 'ckpt'}; train first with python -m detector.train.")
    tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    print(export_graph(model, config, args.out, threshold=args.threshold))


if __name__ == "__main__":
    try:
        main()
    except UserError as error:  # this script's front end: one sentence, exit 2
        print(f"detector.export: error: {error}", file=sys.stderr)
        sys.exit(2)
