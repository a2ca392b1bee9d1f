"""The label-shift estimators compared on labelled posters resampled to other genre mixes (notebook 06,
benchmarks/bench_shift.py): which estimator `predict --adapt-prior` should use."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import PRIOR_ESTIMATORS
from ..scoring import label_shift, metrics


def resample_to_mix(y, targets: dict[int, float], n: int | None = None, seed: int = 0,
                    iterations: int = 50) -> np.ndarray:
    """Indices of a resample (with replacement) of labelled posters whose genre shares match `targets`.

    targets: {genre index: share}. Poster weights are raked (iterative proportional fitting) until each
    named genre's weighted share is its target; the other genres follow their co-occurrence.
    """
    y = np.asarray(y, dtype=float)
    weights = np.ones(len(y))
    for _ in range(iterations):
        for j, share in targets.items():
            positive = y[:, j] > 0
            current = weights[positive].sum() / weights.sum()
            weights[positive] *= share / current
            weights[~positive] *= (1 - share) / (1 - current)
    rng = np.random.default_rng(seed)
    return rng.choice(len(y), size=n or len(y), replace=True, p=weights / weights.sum())


def compare_estimators(y, scores, train_prior, thresholds, confusion: dict | None = None,
                       estimators=PRIOR_ESTIMATORS, top: int = 5,
                       reference_posters: int | None = None) -> pd.DataFrame:
    """On labelled posters: every estimator's adapted model beside the unadapted one, the constant guess
    and the oracle that knows the true mix. Columns: top-3 hit rate, micro F1 (tuned thresholds, and 0.5),
    micro AP, and the largest error of the estimated mix over the `top` most frequent genres and over all."""
    y, scores, train_prior = np.asarray(y), np.asarray(scores, dtype=float), np.asarray(train_prior, dtype=float)
    true_mix = y.mean(axis=0)
    frequent = np.argsort(-true_mix)[:top]

    def row(adapted, mix, cut):
        clipped = np.clip(adapted, 1e-7, 1 - 1e-7)
        at_tuned = metrics.fast_threshold_metrics(y, adapted, cut)
        at_half = metrics.fast_threshold_metrics(y, adapted, 0.5)
        error = np.abs(np.asarray(mix) - true_mix)
        return {"top3_hit_rate": metrics.top_k_hit_rate(y, adapted, 3), "micro_f1@tuned": at_tuned["micro_f1"],
                "micro_f1@0.5": at_half["micro_f1"], "micro_ap": metrics.fast_average_precision(y, adapted, "micro"),
                "log_loss": float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))),
                f"mix error, top {top}": float(error[frequent].max()), "mix error, all": float(error.max())}

    rows = {"unadapted": row(scores, train_prior, thresholds)}
    for method in estimators:
        mix = label_shift.estimate_prior(scores, train_prior, method, confusion, reference_posters=reference_posters)
        adapted = label_shift.reweight(scores, train_prior, mix)
        rows[method] = row(adapted, mix, thresholds)
    oracle = label_shift.reweight(scores, train_prior, true_mix)
    rows["oracle (true mix)"] = row(oracle, true_mix, thresholds)
    constant = np.tile(train_prior, (len(y), 1))
    topk = metrics.constant_scores(train_prior[None, :], len(y), k=3)
    rows["constant: 3 most frequent genres"] = {
        **row(topk, train_prior, np.full(len(train_prior), 0.5)), "micro_ap": metrics.fast_average_precision(
            y, constant, "micro"), "log_loss": row(constant, train_prior, train_prior)["log_loss"]}
    return pd.DataFrame(rows).T
