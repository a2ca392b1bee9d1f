"""Two models on the same posters, genre by genre: each genre's AP for each model and the mean AP over a group of
genres (the rare ones), with 95% intervals from one paired bootstrap (both models scored on the same resamples),
beside each genre's training posters (those that set estimates, and those of training-only sources)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..config import Paths
from ..data.io import read_json
from ..scoring import metrics
from .evaluate import load_eval_data, map_labels

# the genres the default knew least (issue 41): rare in the Kaggle population, filled in by kaggle_posters_rare
RARE_GENRES = ("War", "Western", "History", "Music", "Biography", "Sport", "Short", "Film Noir", "Documentary")


def _interval(point: float, samples: np.ndarray) -> list[float]:
    """[value, low, high]: the bias-corrected percentile interval that evaluate's figures use."""
    samples = samples[np.isfinite(samples)]
    if not np.isfinite(point) or not len(samples):
        return [float(point), float("nan"), float("nan")]
    bias = samples.mean() - point
    low, high = np.percentile(samples, [2.5, 97.5]) - bias
    return [round(float(point), 4), round(float(low), 4), round(float(high), 4)]


def _group_mean(per_genre: np.ndarray, group: np.ndarray) -> float:
    values = per_genre[group]
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def paired_comparison(y_true: np.ndarray, scores: dict[str, np.ndarray], genres: list[str],
                      group: tuple[str, ...] = RARE_GENRES, n_boot: int = 200, seed: int = 0) -> dict:
    """Per-genre AP of each scored model and their mean over `group` (its genres present in these posters), each
    with its 95% interval, and each model's group mean minus the first model's, on the same resamples."""
    y_true = np.asarray(y_true)
    present = y_true.sum(axis=0) > 0
    in_group = np.array([g in group for g in genres]) & present
    names = list(scores)
    points = {name: metrics.fast_per_genre_ap(y_true, s) for name, s in scores.items()}
    rng = np.random.default_rng(seed)
    samples = {name: [] for name in names}
    for _ in range(n_boot):
        rows = rng.integers(0, len(y_true), len(y_true))
        for name in names:
            samples[name].append(metrics.fast_per_genre_ap(y_true[rows], scores[name][rows]))
    samples = {name: np.array(values, dtype=float) for name, values in samples.items()}
    means = {name: np.array([_group_mean(s, in_group) for s in samples[name]]) for name in names}
    first = names[0]
    return {
        "posters": int(len(y_true)), "group": [g for g, chosen in zip(genres, in_group) if chosen],
        "positives": {g: int(n) for g, n in zip(genres, y_true.sum(axis=0))},
        "group_mean_ap": {name: _interval(_group_mean(points[name], in_group), means[name]) for name in names},
        "group_mean_ap_change": {name: _interval(_group_mean(points[name], in_group) - _group_mean(points[first],
                                                                                                     in_group),
                                                 means[name] - means[first]) for name in names[1:]},
        "per_genre_ap": {name: {g: _interval(points[name][j], samples[name][:, j])
                                for j, g in enumerate(genres) if present[j]} for name in names},
    }


def score_models(folders: dict[str, Path], data: Path | None, paths: Paths, source: str | None = None,
                 progress: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray], list[str]]:
    """Every model's calibrated scores (words read where it has a text head) on one set of labelled posters: the
    project's test split (one `source` of it, if given) or a poster folder. The models must know the same genres."""
    from ..inference.predictor import load
    posters, _ = load_eval_data(data, paths)
    if source is not None:
        posters = posters[posters["source"] == source].reset_index(drop=True)
    scores, y_true, genres = {}, None, None
    for name, folder in folders.items():
        model = load(folder, text=True, text_cache=paths.cache / "text")
        if genres is not None and model.genres != genres:
            raise ValueError(f"{folder}: knows other genres than {next(iter(folders.values()))}")
        frame, y_true, _ = map_labels(posters, model.vocabulary)
        genres = model.genres
        scores[name] = model.scores(frame, progress=progress)[1]
    return y_true, scores, genres


def genre_table(result: dict, counts: pd.DataFrame, names: tuple[str, str]) -> pd.DataFrame:
    """One row a genre present in the set, sorted by its training posters: the two models' AP with intervals."""
    old, new = names
    rows = []
    for genre, (value, low, high) in result["per_genre_ap"][new].items():
        before = result["per_genre_ap"][old][genre]
        rows.append({"genre": genre, "training posters": int(counts.at[genre, "all"]),
                     "of which training-only": int(counts.at[genre, "train only"]),
                     "test positives": result["positives"][genre],
                     f"AP {old}": before[0], f"{old} 95%": f"[{before[1]:.3f}, {before[2]:.3f}]",
                     f"AP {new}": value, f"{new} 95%": f"[{low:.3f}, {high:.3f}]",
                     "rare": genre in result["group"]})
    return pd.DataFrame(rows).sort_values("training posters").reset_index(drop=True)


def comparison_from_results(results: dict, set_name: str) -> tuple[pd.DataFrame, dict]:
    """The genre table of one set of a saved comparison (benchmarks/results/rare_genres.json) and that set's
    entry."""
    entry = results["sets"][set_name]
    counts = pd.DataFrame(results["training_counts"]).T
    return genre_table(entry["comparison"], counts, tuple(results["models"])), entry


def read_comparison(path: Path) -> dict | None:
    """A saved comparison (benchmarks/bench_rare_genres.py), or None where it has not been measured."""
    return read_json(path) if Path(path).exists() else None
