"""The whole pipeline as `make all` runs it (notebooks 01-07, headless) on the sample, in a fresh
project folder: each stage's wall time and peak RSS (target: all of it within 15 minutes).

    python benchmarks/bench_pipeline.py [--source ../shared/data/kaggle_posters_8k]
"""
import argparse
import tempfile
import threading
import time
from pathlib import Path

import psutil
from common import require_sample, write_results

from postergenre.notebooks import NOTEBOOKS_DIR, run_notebook


class PeakRSS:
    """Polls the resident memory of this process's children (the notebook kernel)."""

    def __init__(self, interval=0.2):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, default=None)
    args = parser.parse_args()
    source = (args.source or require_sample()).resolve()
    stages = {}
    with tempfile.TemporaryDirectory() as tmp:
        parameters = {"ROOT": tmp, "SOURCE": str(source)}
        start = time.perf_counter()
        for notebook in sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb")):
            begin = time.perf_counter()
            with PeakRSS() as rss:
                run_notebook(notebook, Path(tmp) / "reports" / notebook.name, parameters)
            stages[notebook.stem] = {"wall_s": round(time.perf_counter() - begin, 1),
                                     "peak_rss_mb": round(rss.peak / 2**20)}
            print(f"{notebook.stem}: {stages[notebook.stem]}", flush=True)
        total = time.perf_counter() - start
        from postergenre.config import Paths
        from postergenre.evaluate import print_saved_comparison
        comparison = print_saved_comparison(Paths.default(tmp))
    print(f"total {total / 60:.1f} min (target 15)")
    write_results("pipeline", {"source": str(source), "stages": stages, "total_s": round(total, 1),
                               "target_s": 900,
                               "comparison_test": comparison.to_dict("index") if comparison is not None else None})


if __name__ == "__main__":
    main()
