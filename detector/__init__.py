"""The SSD garment detector: `load(name_or_path).detect(image)` and the cropping policy.

Importing this package is cheap: TensorFlow loads only when a detector does.
"""

from __future__ import annotations

from detector.crop import FLOOR, CropResult, crops, find_garments
from detector.detection import Detection

__all__ = ["FLOOR", "CropResult", "Detection", "Detector", "crops", "find_garments", "load"]


def load(name_or_path):
    """A Detector from a registered name, our exported .pb, or numbpie's ssd_person_detector.pb."""
    # TensorFlow loads here, not when the package is imported
    from detector.graph import load as load_graph

    return load_graph(name_or_path)


def __getattr__(name: str):
    if name == "Detector":
        from detector.graph import Detector  # lazily, for the same reason as in `load`

        return Detector
    raise AttributeError(f"module 'detector' has no attribute {name!r}")
