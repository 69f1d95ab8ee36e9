"""A small SSD in Keras: a MobileNetV2-style backbone with class and box heads on five scales."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from detector._tf import keras
from detector.anchors import FeatureMap, default_boxes
from numbpie.attributes import CATEGORIES

layers = keras.layers

__all__ = ["SSDConfig", "build_ssd"]

# (expansion, channels, repeats, first stride) per stage: MobileNetV2 up to its 160-channel stage.
BACKBONE = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 3, 2),
    (6, 96, 2, 1),
    (6, 160, 2, 2),
)
FEATURE_STAGES = (2, 4, 5)  # stages whose outputs feed heads: strides 8, 16, 32
EXTRA_CHANNELS = (128, 128)  # two more stride-2 blocks: strides 64, 128
BN_MOMENTUM = 0.9  # moving statistics settle within a few hundred steps of a short run


@dataclass(frozen=True)
class SSDConfig:
    """Everything needed to rebuild the network and its priors; saved beside the weights."""

    input_size: int = 256
    class_names: tuple[str, ...] = ("background", *CATEGORIES)
    width: float = 1.0
    scales: tuple[float, ...] = (0.06, 0.13, 0.24, 0.4, 0.6, 0.85)  # garments fill 6-60% of a side
    aspect_ratios: tuple[float, ...] = (2.0, 0.5)
    strides: tuple[int, ...] = (8, 16, 32, 64, 128)

    @property
    def num_classes(self) -> int:
        """Classes including background."""
        return len(self.class_names)

    def feature_maps(self) -> list[FeatureMap]:
        """One FeatureMap per head, sizes growing from scales[i] to scales[i + 1]."""
        pixels = [s * self.input_size for s in self.scales]
        return [
            FeatureMap(
                size=-(-self.input_size // stride),
                step=stride,
                sizes=(pixels[i], pixels[i + 1]),
                aspect_ratios=self.aspect_ratios,
            )
            for i, stride in enumerate(self.strides)
        ]

    def priors(self) -> np.ndarray:
        """(P, 4) centre-form priors matching the network's output order."""
        return default_boxes(self.feature_maps(), self.input_size)

    def to_json(self) -> str:
        """The config as a JSON string."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SSDConfig:
        """A config from `to_json` output."""
        values = json.loads(text)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def _channels(count: int, width: float) -> int:
    return max(8, int(round(count * width / 8)) * 8)


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, act: bool = True):
    x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x) if act else x


def _inverted_residual(x, expansion: int, filters: int, stride: int, name: str):
    """Expand 1x1, depthwise 3x3, project 1x1; a skip connection when shapes allow."""
    inputs = x
    if expansion != 1:
        x = _conv_bn(x, x.shape[-1] * expansion, 1, 1, f"{name}_expand")
    x = layers.DepthwiseConv2D(3, stride, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_dw_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
    x = _conv_bn(x, filters, 1, 1, f"{name}_project", act=False)
    if stride == 1 and inputs.shape[-1] == filters:
        x = layers.Add(name=f"{name}_add")([inputs, x])
    return x


def _backbone(image, width: float) -> list:
    """Feature maps at strides 8, 16, 32, 64 and 128."""
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="scale")(image)
    x = _conv_bn(x, _channels(16, width), 3, 2, "stem")
    features = []
    for stage, (expansion, filters, repeats, stride) in enumerate(BACKBONE):
        for i in range(repeats):
            name = f"stage{stage}_{i}"
            x = _inverted_residual(
                x, expansion, _channels(filters, width), stride if i == 0 else 1, name
            )
        if stage in FEATURE_STAGES:
            features.append(x)
    for i, filters in enumerate(EXTRA_CHANNELS):
        x = _inverted_residual(x, 4, _channels(filters, width), 2, f"extra{i}")
        features.append(x)
    return features


def _head(x, per_anchor: int, anchors: int, name: str, bias=None):
    bias_init = "zeros" if bias is None else keras.initializers.Constant(np.tile(bias, anchors))
    x = layers.Conv2D(
        anchors * per_anchor,
        3,
        padding="same",
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
        bias_initializer=bias_init,
        name=name,
    )(x)
    return layers.Reshape((-1, per_anchor), name=f"{name}_flat")(x)


def _background_prior(num_classes: int, background: float = 0.99) -> np.ndarray:
    """Class biases that start every prior at `background` probability, so early losses stay sane."""
    rest = (1.0 - background) / (num_classes - 1)
    return np.log([background] + [rest] * (num_classes - 1)).astype(np.float32)


def build_ssd(config: SSDConfig = SSDConfig(), seed: int = 0) -> keras.Model:
    """SSD taking float32 RGB (B, S, S, 3) in 0..255; returns [class logits (B, P, C), offsets (B, P, 4)]."""
    keras.utils.set_random_seed(seed)
    size = config.input_size
    image = keras.Input((size, size, 3), name="image")
    features = _backbone(image, config.width)
    fmaps = config.feature_maps()
    assert len(features) == len(fmaps), "one feature map per configured stride"
    logits, offsets = [], []
    for i, (x, fmap) in enumerate(zip(features, fmaps, strict=True)):
        assert x.shape[1] == fmap.grid[0], f"feature map {i} is {x.shape[1]}, expected {fmap.grid}"
        prior = _background_prior(config.num_classes)
        logits.append(_head(x, config.num_classes, fmap.num_anchors, f"cls{i}", prior))
        offsets.append(_head(x, 4, fmap.num_anchors, f"box{i}"))
    logits = layers.Concatenate(axis=1, name="logits")(logits)
    offsets = layers.Concatenate(axis=1, name="offsets")(offsets)
    return keras.Model(image, [logits, offsets], name="ssd")
