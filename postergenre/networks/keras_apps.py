"""VGG16 and DenseNet121 from keras.applications, as pretrained feature extractors (registry builders).

Their ImageNet weights come from a file the user gives or the one Keras keeps in its cache: there is no
download here, and no training from scratch in their place.
"""
from __future__ import annotations

import os
from pathlib import Path

import keras
from keras import layers

from ..config import UserError
from .flip_tta import mean_of_halves, mirrored_batch
from .registry import get


def keras_weights_file(name: str, weights: str | os.PathLike | None) -> Path:
    """A user's weights file, or the one Keras keeps in its cache; a clear stop if neither exists."""
    if weights:
        path = Path(weights)
        if not path.exists():
            raise UserError(f"{path}: weights file not found")
        return path
    cache_file = get(name).keras_cache_file
    cached = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models" / cache_file
    if cached.exists():
        return cached
    raise UserError(f"{name} needs ImageNet weights: pass --weights FILE ({cache_file}) or put it "
                    f"in {cached.parent} (Keras downloads it there on a machine with internet); "
                    "refusing to train from scratch")


def _application(name, build, preprocess, input_size, weights=None, tta=False, pretrained=True) -> keras.Model:
    inputs = keras.Input((*input_size, 3), name="image")
    x = layers.Lambda(mirrored_batch, name="tta_add_mirrors")(inputs) if tta else inputs
    x = layers.Lambda(preprocess, name="preprocess")(x)
    base = build(include_top=False, weights=None, input_tensor=x)
    if pretrained:
        weights_file = keras_weights_file(name, weights)
        try:
            base.load_weights(weights_file)
        except Exception as exc:  # h5py/keras raise several types for a mismatched file
            raise UserError(f"{weights_file}: weights of the wrong architecture for {name} ({exc})"[:300]) from None
    outputs = layers.GlobalAveragePooling2D(name="avg_pool")(base.output)
    if tta:  # the same flat graph as EfficientNet-Lite's
        outputs = layers.Lambda(mean_of_halves, name="tta_mean")(outputs)
    return keras.Model(inputs, outputs, name=name)


def vgg16(name, input_size, weights=None, tta=False, pretrained=True) -> keras.Model:
    return _application(name, keras.applications.VGG16, keras.applications.vgg16.preprocess_input, input_size,
                        weights, tta, pretrained)


def densenet121(name, input_size, weights=None, tta=False, pretrained=True) -> keras.Model:
    return _application(name, keras.applications.DenseNet121, keras.applications.densenet.preprocess_input,
                        input_size, weights, tta, pretrained)
