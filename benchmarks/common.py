"""Shared by the benchmark scripts: import path, the sample, and writing results as JSON."""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from postergenre.config import SHARED_SAMPLE  # noqa: E402
from postergenre.inference.manifest import machine  # noqa: E402

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
