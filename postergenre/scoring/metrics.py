"""Multi-label metrics: the seeds' top-k definitions and the ones the field trusts.

y_true is an (n_posters, n_genres) 0/1 array, scores the same shape of probabilities.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, f1_score, hamming_loss, roc_auc_score


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores per row (ties broken by the lower genre index)."""
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def top_k_hit_rate(y_true, scores, k: int = 3) -> float:
    """Seed 000: share of posters with at least one true genre among the k highest-scored."""
    hits = np.take_along_axis(np.asarray(y_true), _top_k(np.asarray(scores), k), axis=1)
    return float((hits.sum(axis=1) > 0).mean())


def top_k_count(y_true, scores, k: int = 3) -> float:
    """Seed 002: true genres found among the top k, summed over posters, divided by the number of posters."""
    hits = np.take_along_axis(np.asarray(y_true), _top_k(np.asarray(scores), k), axis=1)
    return float(hits.sum() / len(hits))


def top_n_accuracy(y_true, scores) -> float:
    """Seed 001: with n the poster's number of true genres, the share of them among its top n, averaged."""
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    n_true = y_true.sum(axis=1).astype(int)
    order = np.argsort(-scores, axis=1, kind="stable")
    found_by_rank = np.cumsum(np.take_along_axis(y_true, order, axis=1), axis=1)  # true genres among the top r+1
    valid = n_true > 0
    found = found_by_rank[np.flatnonzero(valid), n_true[valid] - 1]
    return float((found / n_true[valid]).mean())


def precision_at_k(y_true, scores, k: int) -> float:
    hits = np.take_along_axis(np.asarray(y_true), _top_k(np.asarray(scores), k), axis=1)
    return float(hits.mean())


def present_genres(y_true) -> np.ndarray:
    """Genres with at least one positive and one negative (AP and AUC are undefined otherwise)."""
    y_true = np.asarray(y_true)
    positives = y_true.sum(axis=0)
    return (positives > 0) & (positives < len(y_true))


def average_precision(y_true, scores, average: str = "macro") -> float:
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    if average == "micro":
        return float(average_precision_score(y_true.ravel(), scores.ravel()))
    keep = present_genres(y_true)
    return float(average_precision_score(y_true[:, keep], scores[:, keep], average=average))


def per_genre_ap(y_true, scores) -> np.ndarray:
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    return np.array([average_precision_score(y_true[:, j], scores[:, j]) if ok else np.nan
                     for j, ok in enumerate(present_genres(y_true))])


def per_genre_auc(y_true, scores) -> np.ndarray:
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    return np.array([roc_auc_score(y_true[:, j], scores[:, j]) if ok else np.nan
                     for j, ok in enumerate(present_genres(y_true))])


def genres_averaged(y_true, genres: list[str] | None = None) -> dict:
    """What a per-genre average (macro AP, macro F1) averages over: the genres present in these posters.

    A genre with no poster here has no AP and an F1 of 0 whatever the model does; counting it would score the
    data, not the model."""
    present = present_genres(y_true)
    names = genres if genres is not None else [str(j) for j in range(len(present))]
    return {"count": int(present.sum()), "of": len(present),
            "absent": [name for name, ok in zip(names, present) if not ok]}


def threshold_metrics(y_true, scores, thresholds) -> dict:
    """F1s and Hamming loss at per-genre thresholds; macro F1 over the genres present (present_genres)."""
    y_pred = (np.asarray(scores) >= np.asarray(thresholds)).astype(int)
    y_true = np.asarray(y_true)
    keep = present_genres(y_true)
    return {"micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
            "macro_f1": float(f1_score(y_true[:, keep], y_pred[:, keep], average="macro", zero_division=0))
            if keep.any() else float("nan"),
            "samples_f1": float(f1_score(y_true, y_pred, average="samples", zero_division=0)),
            "hamming_loss": float(hamming_loss(y_true, y_pred))}


THRESHOLD_GRID = np.linspace(0.02, 0.9, 45)


def tune_thresholds(y_true, scores, grid=THRESHOLD_GRID) -> np.ndarray:
    """Per genre, the threshold that maximises F1 on this (validation) data; 0.5 where undefined.

    F1 from counts, all genres and thresholds at once: scikit-learn's f1_score to the bit, without its 800 calls."""
    y_true, scores = np.asarray(y_true).astype(bool), np.asarray(scores)
    predicted = scores[:, :, None] >= grid[None, None, :]  # posters x genres x thresholds
    tp = (predicted & y_true[:, :, None]).sum(axis=0)
    positives = y_true.sum(axis=0)
    f1 = f1_from_counts(tp, predicted.sum(axis=0) - tp, positives[:, None] - tp)
    return np.where(positives > 0, grid[np.argmax(f1, axis=1)], 0.5)


HEADLINE_KEYS = ("macro_ap", "micro_ap", "top3_hit_rate", "top3_count", "top_n_accuracy")  # what headline gives


def headline(y_true, scores) -> dict:
    """The figures every model card starts with."""
    return {"macro_ap": average_precision(y_true, scores, "macro"),
            "micro_ap": average_precision(y_true, scores, "micro"),
            "top3_hit_rate": top_k_hit_rate(y_true, scores, 3),
            "top3_count": top_k_count(y_true, scores, 3),
            "top_n_accuracy": top_n_accuracy(y_true, scores)}


def constant_scores(train_labels, n_posters: int, k: int | None = 3) -> np.ndarray:
    """Baseline scores: the training prior for every poster, or (k given) 1 for the k most frequent genres."""
    prior = np.asarray(train_labels).mean(axis=0)
    if k is None:
        return np.tile(prior, (n_posters, 1))
    scores = np.zeros((n_posters, len(prior)))
    scores[:, np.argsort(-prior, kind="stable")[:k]] = 1.0
    return scores


# Vectorised twins of the sklearn metrics above, for the bootstrap's thousands of resamples
# (sklearn's input validation alone costs milliseconds a call). Tests hold them equal to sklearn.

def fast_per_genre_ap(y_true, scores) -> np.ndarray:
    """sklearn's average_precision_score per genre (step-wise, ties as one threshold); NaN without positives."""
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    result = np.full(y_true.shape[1], np.nan)
    for j in range(y_true.shape[1]):
        y, s = y_true[:, j], scores[:, j]
        positives = y.sum()
        if positives == 0:
            continue
        order = np.argsort(-s, kind="mergesort")
        y, s = y[order], s[order]
        last_of_threshold = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
        tps = np.cumsum(y)[last_of_threshold]
        precision = tps / (last_of_threshold + 1)
        recall = tps / positives
        result[j] = np.sum(np.diff(np.r_[0.0, recall]) * precision)
    return result


def fast_average_precision(y_true, scores, average: str = "macro") -> float:
    return fast_average_precisions(y_true, scores, (average,))[average]


def fast_average_precisions(y_true, scores, averages=("macro", "micro", "weighted")) -> dict:
    """{average: AP} for each of `averages`; macro and weighted share one pass over the genres."""
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    result = {}
    if "micro" in averages:
        result["micro"] = float(fast_per_genre_ap(y_true.reshape(-1, 1), scores.reshape(-1, 1))[0])
    if {"macro", "weighted"} & set(averages):
        keep = present_genres(y_true)
        ap = fast_per_genre_ap(y_true[:, keep], scores[:, keep])
        weights = y_true[:, keep].sum(axis=0)
        result["macro"] = float(np.mean(ap))
        result["weighted"] = float(np.sum(ap * weights) / weights.sum()) if weights.sum() else float("nan")
    return {average: result[average] for average in averages}


def f1_from_counts(tp, fp, fn):
    """F1 = 2 tp / (2 tp + fp + fn), element-wise; 0 where nothing is true or predicted (zero_division=0)."""
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator, dtype=float), where=denominator > 0)


def fast_threshold_metrics(y_true, scores, thresholds) -> dict:
    """threshold_metrics without sklearn: F1s (zero_division=0) and Hamming loss from counts; macro F1 over the
    genres present."""
    y_true = np.asarray(y_true).astype(bool)
    y_pred = np.asarray(scores) >= np.asarray(thresholds)
    tp = (y_true & y_pred).sum(axis=0)
    fp = (~y_true & y_pred).sum(axis=0)
    fn = (y_true & ~y_pred).sum(axis=0)
    keep = present_genres(y_true)

    row_tp, row_fp, row_fn = ((y_true & y_pred).sum(axis=1), (~y_true & y_pred).sum(axis=1),
                              (y_true & ~y_pred).sum(axis=1))
    return {"micro_f1": float(f1_from_counts(tp.sum(), fp.sum(), fn.sum())),
            "macro_f1": float(np.mean(f1_from_counts(tp, fp, fn)[keep])) if keep.any() else float("nan"),
            "samples_f1": float(np.mean(f1_from_counts(row_tp, row_fp, row_fn))),
            "hamming_loss": float((fp.sum() + fn.sum()) / y_true.size)}
