"""Prediction speed with the shipped default model, `postergenre predict` as a user runs it: one poster from
process start to output (median of --runs), and 1,000 posters in a folder (median of --folder-runs, start-up
included), with the words read (the default) and the image alone (`--no-text`), on LiteRT.

--vs OLD: the same commands on another checkout of the project (its own code and its own models/default, e.g. a
`git worktree` of an earlier commit), run in turn with this one (new, old, new, old, ...), so that each ratio
new/old is taken from runs side by side: this machine's speed drifts between and within sessions.

--threads 1 2: the folder again with each of these LiteRT thread counts (POSTERGENRE_LITERT_THREADS), to choose it.

    python benchmarks/bench_predict.py [--vs OLD_CHECKOUT] [--posters 1000] [--runs 5] [--folder-runs 3] [--threads 1 2]
                                       [--results predict_default]   # another file, held to the same speed
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, require_sample, write_results

TARGETS = {"single_poster_ratio": 0.7, "folder_image_alone_posters_per_s_ratio": 2.0,
           "folder_with_words_posters_per_s_ratio": 1.7}
# --results other than predict: a new default against the one before it (issue 41), as fast within 10%
SAME_SPEED = {"single_poster_ratio_at_most": 1.1, "folder_posters_per_s_ratio_at_least": 0.9}
CASES = {"with_words": [], "image_alone": ["--no-text"]}


def run(checkout: Path, args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak memory in MB) of `postergenre predict ARGS` run from `checkout` (its code, its models/)."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "postergenre.cli", "predict", *args], cwd=checkout, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{checkout}: postergenre predict {' '.join(args[:3])} ... failed: "
                         f"{process.stderr.read().decode()[-1500:]}")
    return wall, usage.ru_maxrss / 1024


def measure(checkouts: dict[str, Path], options: list[str], images: list[Path], folder: Path, runs: int,
            folder_runs: int) -> dict:
    """Each checkout's single-poster and folder figures, the checkouts taking turns."""
    singles = {name: [] for name in checkouts}
    folders = {name: [] for name in checkouts}
    peaks = {name: 0.0 for name in checkouts}
    for poster in images[:runs]:
        for name, checkout in checkouts.items():
            singles[name].append(run(checkout, [*options, str(poster)])[0])
    for _ in range(folder_runs):
        for name, checkout in checkouts.items():
            with tempfile.TemporaryDirectory() as tmp:
                wall, peak = run(checkout, [*options, str(folder), "--output", str(Path(tmp) / "out.csv")])
            folders[name].append(wall)
            peaks[name] = max(peaks[name], peak)
    n = len(list(folder.iterdir()))
    figures = {}
    for name in checkouts:
        single = statistics.median(singles[name]) if singles[name] else 0.0
        whole = statistics.median(folders[name])
        figures[name] = {"single_poster_s": [round(s, 2) for s in singles[name]], "single_poster_median_s": round(single, 2),
                         "folder_posters": n, "folder_s": [round(s, 1) for s in folders[name]],
                         "folder_median_s": round(whole, 1), "folder_posters_per_s": round(n / whole, 1),
                         "folder_posters_per_s_after_startup": round(n / max(whole - single, 1e-9), 1),
                         "folder_peak_mb": round(peaks[name])}
    if "old" in checkouts:  # ratios pair by pair: each new run against the old run beside it
        figures["ratios"] = {
            "single_poster_time": round(statistics.median(a / b for a, b in zip(singles["new"], singles["old"])), 2),
            "folder_posters_per_s": round(statistics.median(b / a for a, b in zip(folders["new"], folders["old"])), 2)}
    return figures


def model_timing(model: Path, posters: list[Path], runs: int = 5, n_posters: int = 500) -> dict:
    """One model folder's figures on this checkout (image and words as the folder has them): single-poster and
    folder times, as measure() gives them."""
    with tempfile.TemporaryDirectory() as tmp:
        for poster in posters[:n_posters]:
            (Path(tmp) / poster.name).symlink_to(poster)
        return measure({"new": REPO}, ["--model", str(model)], posters[-runs:], Path(tmp), runs, 1)["new"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vs", type=Path, default=None, help="another checkout, measured in turn with this one")
    parser.add_argument("--posters", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--folder-runs", type=int, default=3)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--threads", nargs="*", type=int, default=[], help="LiteRT thread counts to compare")
    parser.add_argument("--results", default="predict",
                        help="the results file (benchmarks/results/NAME.json); other than predict, the targets are "
                             "the same speed within 10%% (a new default against the one before it)")
    args = parser.parse_args()
    sample = require_sample()
    images = sorted((sample / "images").glob("*.jpg"))
    checkouts = {"new": REPO, **({"old": args.vs.resolve()} if args.vs else {})}
    figures = {"targets": TARGETS if args.results == "predict" else SAME_SPEED, "posters": args.posters}
    if args.vs:
        commit = subprocess.run(["git", "-C", str(args.vs), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        figures["old"] = {"checkout": str(args.vs), "commit": commit}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for poster in images[:args.posters]:
            (folder / poster.name).symlink_to(poster)
        for case in args.cases:
            figures[case] = measure(checkouts, CASES[case], images[-args.runs:], folder, args.runs, args.folder_runs)
            print(case, {k: v for k, v in figures[case].items()}, flush=True)
        for case in args.cases if args.threads else []:
            figures.setdefault("threads", {})[case] = {}
            for count in args.threads:
                os.environ["POSTERGENRE_LITERT_THREADS"] = str(count)
                timing = measure({"new": REPO}, CASES[case], [], folder, 0, args.folder_runs)["new"]
                figures["threads"][case][count] = {k: timing[k] for k in ("folder_s", "folder_posters_per_s")}
                print(case, "threads", count, figures["threads"][case][count], flush=True)
            os.environ.pop("POSTERGENRE_LITERT_THREADS")
    if args.results != "predict" and args.vs:
        figures["met"] = {case: figures[case]["ratios"]["single_poster_time"] <= SAME_SPEED["single_poster_ratio_at_most"]
                          and figures[case]["ratios"]["folder_posters_per_s"]
                          >= SAME_SPEED["folder_posters_per_s_ratio_at_least"] for case in args.cases}
    write_results(args.results, figures)


if __name__ == "__main__":
    main()
