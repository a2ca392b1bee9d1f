"""`make default` as a new user runs it: a fresh clone of this repository's committed HEAD beside it (so that the
recipe finds ../shared), then `make default` (the install, then the recipe on both shared sources) under
/usr/bin/time. Writes the wall time, each stage's seconds and share (from the clone's stages.json), the peak memory
of the largest process, and the check against the shipped model (the clone's rebuild_report.json) into
benchmarks/results/rebuild_default.json.

    python benchmarks/bench_rebuild.py [--keep DIR]
    python benchmarks/bench_rebuild.py --collect CLONE --time-file FILE --wall-s S   # a run made the same way
"""
import argparse
import json
import re
import shutil
import subprocess
import time
import tomllib
from pathlib import Path

from common import REPO, require_sample, write_results

TARGET_S = 60 * 60  # issue 30: `make default` within 60 minutes of a fresh clone, on 2 cores
RECIPE = "recipes/default.toml"


def recipe_name(recipe: str) -> str:
    """The folder a recipe builds under models/."""
    return tomllib.loads((REPO / recipe).read_text())["name"]


def peak_memory_mb(time_file: Path) -> float | None:
    """GNU time's 'Maximum resident set size' (KiB): the largest single process of the run."""
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_file.read_text())
    return round(int(found.group(1)) / 1024, 1) if found else None


def collect(clone: Path, wall_s: float, time_file: Path, commit: str, name: str) -> dict:
    parts = clone / "models" / f"{name}.parts"
    stages = json.loads((parts / "stages.json").read_text())
    staged = sum(s["seconds"] for s in stages.values())
    report = json.loads((clone / "models" / name / "rebuild_report.json").read_text())
    posters = len((clone / "data" / "raw" / "movies.csv").read_text().splitlines()) - 1
    return {"commit": commit, "wall_s": round(wall_s, 1), "target_s": TARGET_S, "posters": posters,
            "install_and_overhead_s": round(wall_s - staged, 1),
            "stages": {name: {"seconds": s["seconds"], "share": round(s["seconds"] / wall_s, 3), "figure": s["figure"]}
                       for name, s in stages.items()},
            "peak_rss_mb": peak_memory_mb(time_file), "check": report}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", type=Path, default=None, help="clone here and keep it (default: removed after)")
    parser.add_argument("--collect", type=Path, default=None, help="read a finished run's clone instead of running")
    parser.add_argument("--time-file", type=Path, default=None, help="with --collect: its /usr/bin/time -v output")
    parser.add_argument("--wall-s", type=float, default=None, help="with --collect: its wall time in seconds")
    parser.add_argument("--recipe", default=RECIPE, help="with --collect: the recipe the run made (its name)")
    parser.add_argument("--results", default="rebuild_default", help="the results file's name")
    args = parser.parse_args()
    require_sample()
    if args.collect:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=args.collect, capture_output=True,
                                text=True, check=True).stdout.strip()
        figures = {"recipe": args.recipe, **collect(args.collect, args.wall_s, args.time_file, commit,
                                                     recipe_name(args.recipe))}
    else:
        clone = args.keep or REPO.parent / f"bench_rebuild_{int(time.time())}"
        time_file = clone.with_suffix(".time")
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, check=True).stdout.strip()
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        try:
            start = time.perf_counter()
            subprocess.run(["/usr/bin/time", "-v", "-o", str(time_file), "make", "default"], cwd=clone, check=True)
            figures = collect(clone, time.perf_counter() - start, time_file, commit, recipe_name(RECIPE))
        finally:
            if args.keep is None:
                shutil.rmtree(clone, ignore_errors=True)
    print(f"make default: {figures['wall_s'] / 60:.1f} min (target {TARGET_S / 60:.0f}), peak "
          f"{figures['peak_rss_mb']} MB; " + ", ".join(f"{k} {v['share']:.0%}" for k, v in figures["stages"].items()))
    write_results(args.results, figures)


if __name__ == "__main__":
    main()
