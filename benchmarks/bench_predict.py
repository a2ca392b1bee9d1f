"""Prediction speed with the shipped default model: one poster from process start to output
(target 5 s), and batch prediction of a CSV of posters (target 100 posters/s).

    python benchmarks/bench_predict.py [--posters 1000] [--runs 3]
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


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posters", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sample = require_sample()
    images = sorted((sample / "images").glob("*.jpg"))
    cli = [str(Path(sys.executable).parent / "postergenre"), "predict"]
    singles = []
    for poster in images[: args.runs]:
        start = time.perf_counter()
        subprocess.run(cli + [str(poster)], check=True, capture_output=True, cwd=REPO)
        singles.append(time.perf_counter() - start)
    print(f"one poster, process start to output: median {statistics.median(singles):.2f}s (target 5 s)")
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "posters.csv"
        pd.DataFrame({"poster_path": [str(p) for p in images[: args.posters]]}).to_csv(listing, index=False)
        start = time.perf_counter()
        subprocess.run(cli + [str(listing), "--output", str(Path(tmp) / "out.csv")], check=True, capture_output=True,
                       cwd=REPO)
        total = time.perf_counter() - start
        predicted = len(pd.read_csv(Path(tmp) / "out.csv"))
    # the batch rate excludes the fixed start-up, measured above as the single-poster time
    rate = predicted / max(total - statistics.median(singles), 1e-9)
    print(f"batch: {predicted} posters in {total:.1f}s including start-up; {rate:.0f} posters/s after start-up "
          f"(target 100)")
    write_results("predict", {"single_poster_s": [round(s, 2) for s in singles],
                              "single_poster_median_s": round(statistics.median(singles), 2),
                              "batch_posters": predicted, "batch_total_s": round(total, 1),
                              "batch_posters_per_s_after_startup": round(rate, 1),
                              "batch_posters_per_s_including_startup": round(predicted / total, 1)})


if __name__ == "__main__":
    main()
