"""Run frozen detector graphs (ours and numbpie's original) behind one `Detector.detect`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from detector import original
from detector._tf import tf
from detector.detection import Detection
from numbpie import weights
from numbpie.errors import WeightsError

__all__ = ["MAX_SIDE", "META_NODE", "Detector", "export_meta", "import_graph", "load", "read_graph_def"]

META_NODE = "numbpie_meta"  # a string constant in our exports holding what `load` needs
MAX_SIDE = 1600  # larger photos are shrunk first: the networks see 256-300 px anyway
Runner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


class Detector:
    """A frozen detector: `detect(image)` returns Detections in pixels of `image`, best first."""

    def __init__(self, run: Runner, class_names: tuple[str, ...], threshold: float, name: str):
        self.run = run
        self.class_names = tuple(class_names)
        self.threshold = float(threshold)
        self.name = name

    def __repr__(self) -> str:
        return (
            f"Detector({self.name!r}, classes={self.class_names[1:]}, threshold={self.threshold})"
        )

    def detect(self, image: Image.Image, threshold: float | None = None) -> list[Detection]:
        """Boxes scoring at least `threshold` (the detector's default when None), best first."""
        threshold = self.threshold if threshold is None else float(threshold)
        if image.mode != "RGB":
            image = image.convert("RGB")
        width, height = image.size
        if width == 0 or height == 0:
            return []
        scale = min(1.0, MAX_SIDE / max(width, height))
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        boxes, scores, labels = self.run(np.asarray(image, dtype=np.uint8))
        bounds = np.array([width, height, width, height], np.float32)
        boxes = np.clip(np.asarray(boxes, np.float32).reshape(-1, 4) / scale, 0, bounds)
        order = np.argsort(-np.asarray(scores), kind="stable")
        return [
            Detection(
                tuple(float(v) for v in boxes[i]), float(scores[i]), self.class_names[labels[i]]
            )
            for i in order
            if scores[i] >= threshold
        ]


def read_graph_def(path: str | Path) -> tf.compat.v1.GraphDef:
    """Parse a binary GraphDef file, or say clearly that it is not one."""
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(Path(path).read_bytes())
    except Exception:
        raise WeightsError(f"{path} is not a frozen TensorFlow graph (.pb GraphDef).") from None
    return graph_def


def import_graph(graph_def, inputs: list[str], outputs: list[str]):
    """A callable running `graph_def` from the named input tensors to the named outputs."""

    def body():
        tf.compat.v1.import_graph_def(graph_def, name="")

    wrapped = tf.compat.v1.wrap_function(body, [])
    graph = wrapped.graph
    return wrapped.prune(
        [graph.as_graph_element(name) for name in inputs],
        [graph.as_graph_element(name) for name in outputs],
    )


def export_meta(graph_def) -> dict | None:
    """What our export recorded in its meta node (input, outputs, classes, config); None for other graphs."""
    node = next((n for n in graph_def.node if n.name == META_NODE), None)
    return None if node is None else json.loads(tf.make_ndarray(node.attr["value"].tensor).item().decode())


def _ours(graph_def, name: str, threshold: float | None) -> Detector:
    meta = export_meta(graph_def)
    keys = ("boxes", "scores", "labels")
    function = import_graph(graph_def, [meta["input"]], [meta["outputs"][k] for k in keys])

    def run(array: np.ndarray):
        return tuple(t.numpy() for t in function(tf.constant(array)))

    chosen = meta["threshold"] if threshold is None else threshold
    return Detector(run, tuple(meta["class_names"]), chosen, name)


def _original(graph_def, name: str, threshold: float | None) -> Detector:
    placeholder = next(n for n in graph_def.node if n.name == original.INPUT.split(":")[0])
    dtype = tf.dtypes.as_dtype(placeholder.attr["dtype"].type)
    fetches = list(original.LOCALISATIONS + original.PREDICTIONS)
    function = import_graph(graph_def, [original.INPUT], fetches)
    decode_threshold = min(original.THRESHOLD, 0.05)

    def run(array: np.ndarray):
        outputs = [t.numpy() for t in function(tf.cast(tf.constant(array), dtype))]
        height, width = array.shape[:2]
        return original.decode_outputs(outputs[:6], outputs[6:], (width, height), decode_threshold)

    chosen = original.THRESHOLD if threshold is None else threshold
    return Detector(run, original.CLASS_NAMES, chosen, name)


def load(name_or_path: str | Path) -> Detector:
    """A Detector from a registered name, our exported .pb, or numbpie's ssd_person_detector.pb."""
    path, entry = weights.resolve("detector", name_or_path)
    graph_def = read_graph_def(path)
    nodes = {node.name for node in graph_def.node}
    threshold = entry.get("threshold")
    if META_NODE in nodes:
        return _ours(graph_def, str(name_or_path), threshold)
    needed = {
        t.split(":")[0] for t in (original.INPUT, *original.LOCALISATIONS, *original.PREDICTIONS)
    }
    if needed <= nodes:
        return _original(graph_def, str(name_or_path), threshold)
    raise WeightsError(
        f"{path} is neither a numbpie detector export (python -m detector.export) "
        "nor numbpie's original ssd_person_detector.pb."
    )
