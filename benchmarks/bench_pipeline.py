"""`make all` as a new user runs it: a fresh clone of this repository's committed HEAD, its install
(`make venv`: a new virtual environment; pip's download cache is this machine's), then the notebooks
01-07 headless on the sample. Writes the install time, each notebook's wall time and peak memory (from the
clone's reports/pipeline.json), the total against the 10-minute target, and the clone's test-split
comparison of the models it trained. --text: then the opt-in text stage in the same clone, timed: reading the
words of every poster of the splits (`postergenre read-text`, the test split's already read by notebook 06) and
adding a text head to the Lite0 model notebook 05 trained (`postergenre train-text`).

    python benchmarks/bench_pipeline.py [--source ../shared/data/kaggle_posters_8k [MORE ...]] [--keep DIR] [--text]
"""
import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from common import REPO, require_sample, write_results

TARGET_S = 10 * 60  # issue 16: `make all` on the sample within 10 minutes of a fresh clone


def timed(command: list[str], cwd: Path) -> float:
    print("$ " + " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True)
    return round(time.perf_counter() - start, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, nargs="+", default=None,
                        help="one source or several (merged as `make all SOURCE=\"A B\"` merges them)")
    parser.add_argument("--results", default=None,
                        help="results file name (default: pipeline; pipeline_sources with several sources)")
    parser.add_argument("--keep", type=Path, default=None, help="clone here and keep it (default: a temporary one)")
    parser.add_argument("--text", action="store_true", help="also time the opt-in text stage after `make all`")
    args = parser.parse_args()
    sources = [path.resolve() for path in (args.source or [require_sample()])]
    source = " ".join(map(str, sources))
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    clone = work / "postergenre"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, check=True).stdout.strip()
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        install_s = timed(["make", "venv"], clone)
        make_all_s = timed(["make", "all", f"SOURCE={source}"], clone)
        run = json.loads((clone / "reports" / "pipeline.json").read_text())
        out = subprocess.run([str(clone / ".venv/bin/python"), "-c",
                              "from postergenre.config import Paths; from postergenre.evaluation.evaluate import "
                              "print_saved_comparison as p; t = p(Paths.default()); "
                              "print('JSON ' + t.to_json(orient='index'))"],
                             cwd=clone, capture_output=True, text=True, check=True)
        comparison = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("JSON "))[5:])
        text_stage = None
        if args.text:
            text_stage = {"read_text_s": timed([".venv/bin/postergenre", "read-text", "--no-progress"], clone),
                          "train_text_s": timed([".venv/bin/postergenre", "train-text", "--model", "efficientnet_lite0",
                                                 "--no-progress"], clone)}
            text_stage["validation"] = json.loads((clone / "models" / "efficientnet_lite0" / "manifest.json")
                                                  .read_text())["text"]["validation"]
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    total = install_s + make_all_s
    print(f"install {install_s:.0f}s + make all {make_all_s:.0f}s = {total / 60:.1f} min"
          + (f" (target {TARGET_S / 60:.0f})" if len(sources) == 1 else ""))
    name = args.results or ("pipeline_sources" if len(sources) > 1 else "pipeline")
    write_results(name, {"source": source, "commit": commit, "install_s": install_s, "make_all_s": make_all_s,
                         "total_s": round(total, 1), "target_s": TARGET_S if len(sources) == 1 else None,
                         "stages": run["stages"],
                         "peak_rss_mb": max(s["peak_rss_mb"] for s in run["stages"].values()),
                         "comparison_test": comparison, "text_stage": text_stage})


if __name__ == "__main__":
    main()
