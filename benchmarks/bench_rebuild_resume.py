"""A rebuild killed with SIGKILL in the middle of read-text and again in the middle of a fine-tune, then the same
command run again each time: does it finish, and does no earlier stage run again? Runs the default recipe on the
first N posters of each source in a scratch project beside the repository, and writes what each run printed about
its stages into benchmarks/results/rebuild_resume.json.

    python benchmarks/bench_rebuild_resume.py [--limit 1500]
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from common import REPO, require_sample, write_results

RECIPE = REPO / "recipes" / "default.toml"
NAME = "resume-check"


def command(root: Path, limit: int) -> list[str]:
    return [sys.executable, "-m", "postergenre.cli", "--root", str(root), "rebuild", str(RECIPE), "--name", NAME,
            "--limit", str(limit), "--no-progress"]


def stage_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("[") and "/" in line.split("]")[0]]


def run_until(root: Path, limit: int, ready, log: Path) -> dict:
    """Start the rebuild; SIGKILL it (the whole process group) once ready(root) holds; what it printed."""
    with open(log, "w") as out:
        process = subprocess.Popen(command(root, limit), stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                   start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        while process.poll() is None and not ready(root):
            time.sleep(0.5)
        killed = process.poll() is None
        if killed:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    text = log.read_text()
    return {"killed": killed, "exit": process.returncode, "stages": stage_lines(text)}


def run_to_end(root: Path, limit: int, log: Path) -> dict:
    with open(log, "w") as out:
        code = subprocess.run(command(root, limit), stdout=out, stderr=subprocess.STDOUT, cwd=REPO).returncode
    text = log.read_text()
    if code:
        print(f"the rebuild failed (exit {code}); the end of its output:\n{text[-3000:]}")
    resumed = [line for line in text.splitlines() if "resuming at epoch" in line or "finished in an earlier run" in line]
    return {"exit": code, "stages": stage_lines(text), "training_resumed": resumed}


def text_cache_lines(root: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in (root / "data" / "cache" / "text").glob("*.jsonl"))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=1500, help="posters of each source")
    args = parser.parse_args()
    require_sample()
    root = REPO.parent / "rebuild_resume_scratch"
    shutil.rmtree(root, ignore_errors=True)
    logs = root / "logs"
    logs.mkdir(parents=True)
    member = root / "models" / f"{NAME}.parts" / "lite0-ft44"
    first = run_until(root, args.limit, lambda r: text_cache_lines(r) >= 640, logs / "1_killed_in_read_text.txt")
    read_when_killed = text_cache_lines(root)
    second = run_until(root, args.limit, lambda r: (member / "backup_finetune" / "state.json").exists()
                       and json.loads((member / "backup_finetune" / "state.json").read_text()).get("epoch", 0) >= 2,
                       logs / "2_resumed_then_killed_in_fine_tune.txt")
    state = json.loads((member / "backup_finetune" / "state.json").read_text())
    third = run_to_end(root, args.limit, logs / "3_resumed_to_the_end.txt")
    fourth = run_to_end(root, args.limit, logs / "4_again.txt")
    figures = {"limit": args.limit, "posters_read_when_killed": read_when_killed,
               "fine_tune_state_when_killed": {k: state.get(k) for k in ("epoch", "best")},
               "first": first, "second": second, "third": third, "fourth": fourth}
    shutil.rmtree(root, ignore_errors=True)
    for name in ("first", "second", "third", "fourth"):
        print(f"--- {name}:\n" + "\n".join(figures[name]["stages"]))
    write_results("rebuild_resume", figures)


if __name__ == "__main__":
    main()
