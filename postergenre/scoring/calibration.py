"""Calibrated probabilities: a per-genre map from the network's output to a probability one can trust.

Fitted on the validation split (the network never trained on it), chosen among temperature, Platt
and isotonic scaling by cross-validated log-loss on that split, stored as calibration.json in the
model folder and applied wherever probabilities leave the package. Pure numpy at prediction time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..config import CALIBRATION_METHODS as METHODS

if TYPE_CHECKING:  # imported where a table is made: predicting needs none
    import pandas as pd

EPS = 1e-6


def logit(p):
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=float)))  # no overflow for large |z|


def log_loss(y, p) -> float:
    """Binary cross-entropy averaged over every (poster, genre) pair."""
    p = np.clip(np.asarray(p, dtype=float), 1e-4, 1 - 1e-4)
    y = np.asarray(y, dtype=float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def platt_targets(y) -> np.ndarray:
    """Platt's (1999) smoothed targets, (N+ + 1) / (N+ + 2) for a positive and 1 / (N- + 2) for a negative: with
    0/1 targets Newton's method can run off on a genre with one or two validation positives (one positive ranked
    second of 2,712: a slope of 742,732, every probability 0, AP 0.5 -> 0.0004)."""
    y = np.asarray(y, dtype=float)
    positives, negatives = y.sum(), len(y) - y.sum()
    return np.where(y > 0, (positives + 1) / (positives + 2), 1 / (negatives + 2))


def _fit_scaling(z, y, with_bias: bool, iterations: int = 50) -> tuple[float, float]:
    """Newton's method for p = sigmoid(a z + b) by maximum likelihood on Platt's targets (b fixed at 0 for
    temperature)."""
    a, b = 1.0, 0.0
    y = platt_targets(y)
    for _ in range(iterations):
        p = sigmoid(a * z + b)
        w = np.maximum(p * (1 - p), 1e-9)
        g = np.array([np.sum((p - y) * z), np.sum(p - y)])
        h = np.array([[np.sum(w * z * z), np.sum(w * z)], [np.sum(w * z), np.sum(w)]]) + 1e-6 * np.eye(2)
        if not with_bias:
            step = np.array([g[0] / h[0, 0], 0.0])
        else:
            step = np.linalg.solve(h, g)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-8:
            break
    return float(a), float(b)


@dataclass
class Calibration:
    method: str = "none"
    scale: list[float] = field(default_factory=list)      # temperature / platt: p = sigmoid(scale * logit + bias)
    bias: list[float] = field(default_factory=list)
    knots_x: list[list[float]] = field(default_factory=list)  # isotonic: piecewise-linear per genre
    knots_y: list[list[float]] = field(default_factory=list)

    def apply(self, scores) -> np.ndarray:
        scores = np.asarray(scores, dtype=float)
        if self.method == "none" or scores.size == 0:
            return scores
        if self.method == "isotonic":
            return np.column_stack([np.interp(scores[:, j], self.knots_x[j], self.knots_y[j])
                                    for j in range(scores.shape[1])])
        return sigmoid(logit(scores) * np.asarray(self.scale) + np.asarray(self.bias))

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v or k == "method"}

    @classmethod
    def from_json(cls, data: dict | None) -> Calibration:
        data = data or {}
        if data.get("method", "none") not in METHODS:
            raise ValueError(f"unknown calibration method {data.get('method')!r}")
        return cls(**{k: data[k] for k in ("method", "scale", "bias", "knots_x", "knots_y") if k in data})


def fit(y, scores, method: str) -> Calibration:
    """One calibration per genre, fitted on (validation) labels y and network outputs `scores`."""
    y, scores = np.asarray(y, dtype=float), np.asarray(scores, dtype=float)
    if method == "none":
        return Calibration()
    if method == "isotonic":
        from sklearn.isotonic import (
            IsotonicRegression,  # here: prediction never fits, and starts faster
        )
        xs, ys = [], []
        for j in range(y.shape[1]):
            if y[:, j].min() == y[:, j].max():  # one class only: leave the genre as it is
                xs.append([0.0, 1.0]), ys.append([0.0, 1.0])
                continue
            iso = IsotonicRegression(y_min=1e-3, y_max=1 - 1e-3, out_of_bounds="clip").fit(scores[:, j], y[:, j])
            xs.append(iso.X_thresholds_.round(6).tolist()), ys.append(iso.y_thresholds_.round(6).tolist())
        return Calibration("isotonic", knots_x=xs, knots_y=ys)
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; choose from {', '.join(METHODS)}")
    pairs = [_fit_scaling(logit(scores[:, j]), y[:, j], with_bias=method == "platt")
             if 0 < y[:, j].sum() < len(y) else (1.0, 0.0) for j in range(y.shape[1])]
    return Calibration(method, scale=[round(a, 6) for a, _ in pairs], bias=[round(b, 6) for _, b in pairs])


def cross_validated_log_loss(y, scores, methods=METHODS, folds: int = 5, seed: int = 0) -> pd.Series:
    """Each method's log-loss on held-out folds of the validation split (fitted on the other folds)."""
    import pandas as pd
    y, scores = np.asarray(y), np.asarray(scores)
    fold = np.random.default_rng(seed).permutation(len(y)) % folds
    result = {}
    for method in methods:
        held_out = np.zeros_like(scores, dtype=float)
        for k in range(folds):
            calibration = fit(y[fold != k], scores[fold != k], method)
            held_out[fold == k] = calibration.apply(scores[fold == k])
        result[method] = log_loss(y, held_out)
    return pd.Series(result, name="cv_log_loss")


def choose(y, scores, methods=METHODS, seed: int = 0) -> tuple[Calibration, pd.Series]:
    """The method with the lowest cross-validated log-loss, refitted on all of the validation split."""
    losses = cross_validated_log_loss(y, scores, methods, seed=seed)
    return fit(y, scores, str(losses.idxmin())), losses


def expected_calibration_error(y, p, bins: int = 15) -> float:
    """ECE over every (poster, genre) pair: |observed rate - mean probability| per equal-width bin, weighted."""
    table = reliability_table(y, p, bins)
    return float((table["count"] * (table["observed"] - table["predicted"]).abs()).sum() / table["count"].sum())


def reliability_table(y, p, bins: int = 15) -> pd.DataFrame:
    """Per probability bin: mean predicted probability, observed share of positives, pairs in the bin."""
    import pandas as pd
    y, p = np.asarray(y, dtype=float).ravel(), np.asarray(p, dtype=float).ravel()
    index = np.minimum((p * bins).astype(int), bins - 1)
    frame = pd.DataFrame({"bin": index, "predicted": p, "observed": y})
    table = frame.groupby("bin").agg(predicted=("predicted", "mean"), observed=("observed", "mean"),
                                     count=("observed", "size"))
    return table.reset_index()


def report(y, raw, calibrated, bins: int = 15) -> dict:
    """Calibration error and log-loss before and after, for a manifest or an evaluation report."""
    return {"ece_before": expected_calibration_error(y, raw, bins),
            "ece_after": expected_calibration_error(y, calibrated, bins),
            "log_loss_before": log_loss(y, raw), "log_loss_after": log_loss(y, calibrated)}
