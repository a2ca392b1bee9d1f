"""Shared by the benchmark scripts: import path, the sample, writing results as JSON, and two sets of scores
compared on the same bootstrap resamples."""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from postergenre.config import SHARED_SAMPLE  # noqa: E402
from postergenre.scoring import metrics  # noqa: E402
from postergenre.modelfolder.provenance import machine  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"


def require_sample() -> Path:
    if not (SHARED_SAMPLE / "labels.csv").exists():
        print(f"skipped: the real posters are not at {SHARED_SAMPLE}")
        sys.exit(0)
    return SHARED_SAMPLE


def peak_rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_results(name: str, figures: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    figures = {"benchmark": name, "when": time.strftime("%Y-%m-%dT%H:%M:%S"), **machine(),
               "python": platform.python_version(), **figures}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {path}")
    return path


FIGURES = ("macro_ap", "top3_hit_rate", "micro_f1")


def figures(y, p, thresholds) -> dict:
    return {"macro_ap": metrics.fast_average_precision(y, p, "macro"),
            "top3_hit_rate": metrics.top_k_hit_rate(y, p, 3),
            "micro_f1": metrics.fast_threshold_metrics(y, p, thresholds)["micro_f1"]}


def paired(y, first, second, thresholds, n_boot: int, seed: int = 0, second_thresholds=None) -> dict:
    """Each figure on `first` and `second` and their difference (second - first), with 95% percentile intervals
    over the same resampled posters; second_thresholds: the second model's own (two models compared)."""
    other = thresholds if second_thresholds is None else second_thresholds
    rng = np.random.default_rng(seed)
    point = {"first": figures(y, first, thresholds), "second": figures(y, second, other)}
    samples = {k: [] for k in ("first", "second", "difference")}
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        a, b = figures(y[idx], first[idx], thresholds), figures(y[idx], second[idx], other)
        samples["first"].append(a)
        samples["second"].append(b)
        samples["difference"].append({k: b[k] - a[k] for k in a})
    point["difference"] = {k: point["second"][k] - point["first"][k] for k in FIGURES}
    out = {}
    for part, values in samples.items():
        out[part] = {k: [round(point[part][k], 4),
                         *[round(float(v), 4) for v in np.percentile([s[k] for s in values], [2.5, 97.5])]]
                     for k in FIGURES}
    return out
