"""The base install as a user makes it (issue 43): the wheel built from this checkout, installed with its base
dependencies alone (pinned by requirements.lock) into a fresh venv outside the repository; its size and install time
beside the full venv's, the same probabilities to 4 decimals on 20 posters with and without words, and one poster
from process start through each, timed in turn (pairs, the ratio their median). Writes benchmarks/results/install.json.

    python benchmarks/bench_install.py [--runs 7]
"""
import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, require_sample, write_results

VENV = REPO / ".venv"


def folder_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20, 1)


def base_install(work: Path) -> tuple[Path, dict]:
    """A venv in `work` holding the wheel and its base dependencies, offline from the package cache, compiled to
    bytecode as pip's install does (uv's does not by default)."""
    wheels, venv = work / "wheels", work / "venv"
    start = time.perf_counter()
    subprocess.run([str(VENV / "bin" / "pip"), "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels),
                    str(REPO)], check=True)
    built = time.perf_counter() - start
    constraints = work / "constraints.txt"
    constraints.write_text("".join(line.split(" ")[0] + "\n" for line in (REPO / "requirements.lock").read_text()
                                   .splitlines() if line[:1].isalnum() and "==" in line))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(VENV / "bin" / "uv"), "pip", "install", "-q", "--offline", "--compile-bytecode", "--python",
                    str(venv / "bin" / "python"), "-c", str(constraints), *map(str, wheels.glob("*.whl"))], check=True)
    return venv, {"wheel_build_s": round(built, 1), "install_s": round(time.perf_counter() - start, 1),
                  "wheel_mb": round(sum(f.stat().st_size for f in wheels.glob("*.whl")) / 2**20, 1)}


def predict(venv: Path, posters: list[Path], cwd: Path, *options) -> list[dict]:
    done = subprocess.run([str(venv / "bin" / "postergenre"), "predict", *map(str, posters), "--json", *options],
                          capture_output=True, text=True, cwd=cwd, check=True)
    return json.loads(done.stdout)


def largest_difference(a: list[dict], b: list[dict]) -> float:
    return max(abs(x["probabilities"][g] - y["probabilities"][g]) for x, y in zip(a, b) for g in x["probabilities"])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7, help="one poster through each venv, this many times in turn")
    args = parser.parse_args()
    sample = require_sample()
    posters = sorted((sample / "images").glob("*.jpg"))[:20]
    with tempfile.TemporaryDirectory(prefix="bench_install_") as tmp:
        work = Path(tmp)
        venv, install = base_install(work)
        elsewhere = work / "elsewhere"  # outside the repository: the wheel's own default must be found
        elsewhere.mkdir()
        same = {}
        for name, options in (("with_words", ()), ("image_alone", ("--no-text",))):
            base, full = predict(venv, posters, elsewhere, *options), predict(VENV, posters, REPO, *options)
            same[name] = {"largest_difference": largest_difference(base, full),
                          "same_to_4_decimals": largest_difference(base, full) < 5e-5}
        times = {"base": [], "full": []}
        for _ in range(args.runs):
            for name, env, cwd in (("base", venv, elsewhere), ("full", VENV, REPO)):
                start = time.perf_counter()
                predict(env, posters[:1], cwd)
                times[name].append(time.perf_counter() - start)
        ratios = [b / f for b, f in zip(times["base"], times["full"])]
        figures = {"base_venv_mb": folder_mb(venv), "full_venv_mb": folder_mb(VENV),
                   "base_has_tensorflow": (venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
                                           / "site-packages" / "tensorflow").exists(),
                   **install, "same_probabilities": same, "one_poster_s": {k: round(statistics.median(v), 3)
                                                                          for k, v in times.items()},
                   "one_poster_ratio_base_over_full": round(statistics.median(ratios), 3), "runs": args.runs,
                   "target_base_venv_mb": 700}
        shutil.rmtree(venv, ignore_errors=True)
    print(json.dumps(figures, indent=1))
    write_results("install", figures)


if __name__ == "__main__":
    main()
