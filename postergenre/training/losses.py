"""Class imbalance: per-genre positive weights, focal and asymmetric losses, oversampling."""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from ..config import LOSSES


def positive_weights(labels: np.ndarray, cap: float = 10.0) -> np.ndarray:
    """negatives/positives per genre, capped, so that rare genres count as much as common ones."""
    positives = labels.sum(axis=0).clip(min=1)
    return np.minimum((len(labels) - positives) / positives, cap).astype(np.float32)


@keras.saving.register_keras_serializable("postergenre")
class WeightedBCE(keras.losses.Loss):
    def __init__(self, pos_weight, name="weighted_bce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pos_weight = [float(w) for w in np.asarray(pos_weight)]

    def call(self, y_true, y_pred):
        p = ops.clip(y_pred, 1e-7, 1 - 1e-7)
        w = ops.convert_to_tensor(self.pos_weight, dtype=p.dtype)
        return -ops.mean(w * y_true * ops.log(p) + (1 - y_true) * ops.log(1 - p), axis=-1)

    def get_config(self):
        return {**super().get_config(), "pos_weight": self.pos_weight}


@keras.saving.register_keras_serializable("postergenre")
class AsymmetricLoss(keras.losses.Loss):
    """Ridnik et al. 2021: focus on hard positives, shift and down-weight easy negatives."""

    def __init__(self, gamma_pos=0.0, gamma_neg=4.0, clip=0.05, name="asymmetric", **kwargs):
        super().__init__(name=name, **kwargs)
        self.gamma_pos, self.gamma_neg, self.clip = gamma_pos, gamma_neg, clip

    def call(self, y_true, y_pred):
        p = ops.clip(y_pred, 1e-7, 1 - 1e-7)
        p_neg = ops.clip(p - self.clip, 0.0, 1.0)
        loss_pos = y_true * ops.power(1 - p, self.gamma_pos) * ops.log(p)
        loss_neg = (1 - y_true) * ops.power(p_neg, self.gamma_neg) * ops.log(ops.clip(1 - p_neg, 1e-7, 1.0))
        return -ops.mean(loss_pos + loss_neg, axis=-1)

    def get_config(self):
        return {**super().get_config(), "gamma_pos": self.gamma_pos, "gamma_neg": self.gamma_neg,
                "clip": self.clip}


def make_loss(name: str, labels: np.ndarray):
    if name == "bce":
        return keras.losses.BinaryCrossentropy()
    if name == "weighted":
        return WeightedBCE(positive_weights(labels))
    if name == "focal":
        return keras.losses.BinaryFocalCrossentropy(gamma=2.0)
    if name == "asymmetric":
        return AsymmetricLoss()
    raise ValueError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")


def oversample_indices(labels: np.ndarray, seed: int = 42, max_repeat: int = 4) -> np.ndarray:
    """Row indices where a poster of a rare genre repeats (as the seeds oversampled).

    Each row repeats round(median genre count / count of its rarest genre) times, at most max_repeat.
    """
    counts = labels.sum(axis=0).astype(float)
    median = np.median(counts[counts > 0])
    rarest = np.where(labels > 0, counts[None, :], np.inf).min(axis=1)
    repeats = np.clip(np.round(median / np.where(np.isfinite(rarest), rarest, median)), 1, max_repeat).astype(int)
    indices = np.repeat(np.arange(len(labels)), repeats)
    return np.random.default_rng(seed).permutation(indices)
