"""Execute the numbered notebooks headless, as `make all` and the tests do.

A notebook's cell tagged `parameters` holds its defaults; values given here are
injected as a new cell right after it (the papermill convention), so a notebook
reads the same whether a person or a program runs it.
"""
from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from ..config import HEADLESS, REPO_ROOT, UserError
from ..data.io import write_json
from ..modelfolder.provenance import machine

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
# HEADLESS (config) is set while the notebooks run: a notebook skips what needs a person (the web page of 07)


def inject_parameters(notebook: nbformat.NotebookNode, parameters: dict) -> nbformat.NotebookNode:
    if not parameters:
        return notebook
    source = "# injected parameters\n" + "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    tagged = [i for i, c in enumerate(notebook.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    notebook.cells.insert(tagged[0] + 1 if tagged else 0, cell)
    return notebook


def run_notebook(path: Path, output: Path | None = None, parameters: dict | None = None,
                 timeout: int = 1800, env: dict | None = None) -> nbformat.NotebookNode:
    """Execute one notebook in its own folder; write the executed copy to `output`."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: notebook not found")
    notebook = inject_parameters(nbformat.read(path, as_version=4), parameters or {})
    saved_env = dict(os.environ)
    os.environ.update({k: str(v) for k, v in (env or {}).items()})
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ[HEADLESS] = "1"  # a notebook skips what needs a person (the web page of notebook 07)
    try:
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        client.execute()
    except CellExecutionError as exc:
        if output:
            _write(notebook, output)
        raise UserError(f"{path.name} failed: {str(exc).strip().splitlines()[-1]}") from None
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
    if output:
        _write(notebook, output)
    return notebook


# TensorFlow's own log lines: absl's start-up warning, C++ log lines (oneDNN's I0000/E0000 port.cc:153 ...), and
# Python-side INFO/WARNING of tensorflow and absl (assets written, tf.function retracing, the legacy HDF5 notice)
TF_LOG_LINE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)"
                         r"|[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w.]+:\d+\]"
                         r"|(INFO|WARNING|ERROR):(tensorflow|absl):)")


def quiet_outputs(notebook: nbformat.NotebookNode) -> int:
    """Drop TensorFlow's log lines from the notebook's printed outputs (they say nothing about the work and bury
    what does); a stream left empty goes too. Returns how many lines were dropped."""
    dropped = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kept_outputs = []
        for output in cell.outputs:
            if output.get("output_type") == "stream":
                lines = output.text.splitlines(keepends=True)
                kept = [line for line in lines if not TF_LOG_LINE.match(line)]
                dropped += len(lines) - len(kept)
                if not "".join(kept).strip():
                    continue
                output.text = "".join(kept)
            kept_outputs.append(output)
        cell.outputs = kept_outputs
    return dropped


def _write(notebook, output: Path) -> None:
    quiet_outputs(notebook)
    output.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, output)


class PeakChildMemory:
    """Polls the resident memory of this process's children (a notebook's kernel) for its peak."""

    def __init__(self, interval: float = 0.2):
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
            self._stop.wait(self.interval)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()


def run_pipeline(notebooks: list[Path], out_dir: Path, parameters: dict, env: dict | None = None) -> dict:
    """Run notebooks in order; returns {notebook name: {"wall_s", "peak_rss_mb"}}, also written (with the
    machine's cores and the date) to out_dir/pipeline.json for `postergenre report`."""
    stages, start = {}, time.perf_counter()
    for path in notebooks:
        begin = time.perf_counter()
        print(f"running {path.name} ...", flush=True)
        with PeakChildMemory() as memory:
            run_notebook(path, out_dir / path.name, parameters, env=env)
        stages[path.stem] = {"wall_s": round(time.perf_counter() - begin, 1),
                             "peak_rss_mb": round(memory.peak / 2**20)}
        print(f"  done in {stages[path.stem]['wall_s']:.1f}s, peak memory {stages[path.stem]['peak_rss_mb']} MB "
              f"-> {out_dir / path.name}", flush=True)
    write_json({"when": time.strftime("%Y-%m-%dT%H:%M:%S"), **machine(),
                "notebooks_s": round(time.perf_counter() - start, 1), "stages": stages},
               out_dir / "pipeline.json")
    return stages
