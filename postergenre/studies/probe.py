"""Why does a network stay at the genre prior? Two measurements on a batch of posters.

dead_fraction: the share of a ReLU layer's units (channels of a conv map) that are zero on every poster:
               a dead unit passes no gradient and never comes back.
output_spread: how much the network's logits differ between posters (their standard deviation over posters,
               averaged over genres): a network at the prior gives every poster the same scores, spread 0.
"""
from __future__ import annotations

import keras
import numpy as np


def layer_outputs(model: keras.Model, images, names: list[str]) -> dict[str, np.ndarray]:
    """The named layers' outputs for `images`, in inference mode (dropout off)."""
    probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
    outputs = probe(images, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return {n: np.asarray(o) for n, o in zip(names, outputs)}


def dead_fraction(activations: np.ndarray) -> float:
    """Share of units (last axis) that are zero for every poster and position."""
    units = activations.reshape(-1, activations.shape[-1])
    return float(np.mean(~(units > 0).any(axis=0)))


def output_spread(probabilities: np.ndarray, eps: float = 1e-7) -> float:
    """Mean over genres of the standard deviation over posters of the logit."""
    p = np.clip(probabilities, eps, 1 - eps)
    return float(np.mean(np.std(np.log(p / (1 - p)), axis=0)))


def diagnose(model: keras.Model, images, relu_layers: list[str]) -> dict:
    """dead fraction of each named ReLU layer, and the output spread, on one batch of posters."""
    outputs = layer_outputs(model, images, [*relu_layers, model.layers[-1].name])
    figures = {f"dead_{n}": round(dead_fraction(outputs[n]), 3) for n in relu_layers}
    figures["output_spread"] = round(output_spread(outputs[model.layers[-1].name]), 4)
    return figures
