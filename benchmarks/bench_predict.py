"""Prediction speed with the shipped default model, `postergenre predict` as a user runs it: one poster from
process start to output (median of --runs; target 2 s), and a CSV of 1,000 posters (target 150 posters/s after
start-up), on LiteRT (the default, no TensorFlow) and, for comparison, on Keras; with the words read (the default)
and, as `litert_image_only`, the image network alone (`--no-text`).

    python benchmarks/bench_predict.py [--posters 1000] [--runs 5] [--runtimes litert keras] [--image-only litert]
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from common import REPO, require_sample, write_results


TARGETS = {"single_poster_s": 2.0, "posters_per_s": 150}


def measure(cli: list[str], images: list[Path], runs: int, n_posters: int) -> dict:
    singles = []
    for poster in images[:runs]:
        start = time.perf_counter()
        subprocess.run(cli + [str(poster)], check=True, capture_output=True, cwd=REPO)
        singles.append(time.perf_counter() - start)
    single = statistics.median(singles)
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "posters.csv"
        pd.DataFrame({"poster_path": [str(p) for p in images[:n_posters]]}).to_csv(listing, index=False)
        start = time.perf_counter()
        subprocess.run(cli + [str(listing), "--output", str(Path(tmp) / "out.csv")], check=True, capture_output=True,
                       cwd=REPO)
        total = time.perf_counter() - start
        predicted = len(pd.read_csv(Path(tmp) / "out.csv"))
    # the batch rate excludes the fixed start-up, measured above as the single-poster time
    rate = predicted / max(total - single, 1e-9)
    return {"single_poster_s": [round(s, 2) for s in singles], "single_poster_median_s": round(single, 2),
            "batch_posters": predicted, "batch_total_s": round(total, 1),
            "batch_posters_per_s_after_startup": round(rate, 1),
            "batch_posters_per_s_including_startup": round(predicted / total, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posters", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--runtimes", nargs="*", default=["litert", "keras"])
    parser.add_argument("--image-only", nargs="*", default=["litert"],
                        help="runtimes also measured with --no-text: the image network alone, without reading words")
    args = parser.parse_args()
    sample = require_sample()
    images = sorted((sample / "images").glob("*.jpg"))
    figures = {"targets": TARGETS}
    runs = [(runtime, []) for runtime in args.runtimes] + [(runtime, ["--no-text"]) for runtime in args.image_only]
    for runtime, options in runs:
        cli = [str(Path(sys.executable).parent / "postergenre"), "predict", "--runtime", runtime, *options]
        key = runtime + ("_image_only" if options else "")
        figures[key] = measure(cli, images, args.runs, args.posters)
        print(f"{key}: one poster from process start, median {figures[key]['single_poster_median_s']:.2f}s "
              f"(target {TARGETS['single_poster_s']}); {figures[key]['batch_posters']} posters at "
              f"{figures[key]['batch_posters_per_s_after_startup']:.0f}/s after start-up "
              f"(target {TARGETS['posters_per_s']})", flush=True)
    write_results("predict", figures)


if __name__ == "__main__":
    main()
