"""A model folder's network as a LiteRT (.tflite) file, run without TensorFlow.

keras_network.export_litert writes model.tflite (backbone + head, uncalibrated output) when a model is trained or
shipped; it needs TensorFlow. LiteNetwork runs the file with the LiteRT interpreter (`ai-edge-litert`): `postergenre predict`
and `postergenre serve` use it, so a poster's genres come without importing TensorFlow (7 s of a cold start).
The calibration is applied afterwards in numpy, exactly as for the Keras network.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from ..config import UserError, describe
from ..data.io import file_sha256, write_json

TFLITE_FILE = "model.tflite"
THREADS_VARIABLE = "POSTERGENRE_LITERT_THREADS"  # the interpreter's threads; unset: one a core


def thread_count() -> int:
    """The interpreter's thread count: POSTERGENRE_LITERT_THREADS, else one a core (benchmarks/bench_predict.py
    --threads measures the choice)."""
    value = os.environ.get(THREADS_VARIABLE, "")
    if value and not (value.isdigit() and int(value) > 0):
        raise UserError(f"{THREADS_VARIABLE}={value!r}: give a whole number of threads, 1 or more")
    return int(value) if value else os.cpu_count() or 1


SOURCES_FILE = "litert.json"  # which network files (by SHA-256) model.tflite was exported from


def record_sources(folder: Path, network_files: tuple[str, ...]) -> None:
    """Note, by SHA-256, the network files model.tflite was exported from (keras_network.export_litert)."""
    write_json({n: file_sha256(folder / n) for n in network_files if (folder / n).exists()}, folder / SOURCES_FILE)


def publish(partial: Path, folder: Path, network_files: tuple[str, ...]) -> Path:
    """A finished export moved into place as the folder's model.tflite (an atomic rename), with the network files
    it was exported from."""
    partial.replace(Path(folder) / TFLITE_FILE)
    record_sources(folder, network_files)
    return Path(folder) / TFLITE_FILE


def is_current(folder: Path, network_files: tuple[str, ...]) -> bool:
    """model.tflite was exported from the network files the folder holds now (by content: a clone's file times
    say nothing)."""
    folder = Path(folder)
    if not (folder / TFLITE_FILE).exists() or not (folder / SOURCES_FILE).exists():
        return False
    try:
        sources = json.loads((folder / SOURCES_FILE).read_text())
    except ValueError:
        return False
    present = {n: file_sha256(folder / n) for n in network_files if (folder / n).exists()}
    return bool(present) and sources == present


@contextlib.contextmanager
def native_info_silenced():
    """Drop the runtime's native `INFO:` lines ("Created TensorFlow Lite XNNPACK delegate"), which C++ writes
    straight to file descriptor 2 when tensors are first allocated; anything else it writes is passed on."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines(keepends=True)
                    if not line.startswith("INFO: ")]
            if kept:
                sys.stderr.write("".join(kept))


class LiteNetwork:
    """Callable like a Keras model on a batch of float32 images (0..255); returns a numpy array."""

    def __init__(self, path: Path, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter
        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads or thread_count())
        except (ValueError, RuntimeError) as exc:
            raise UserError(f"{path}: cannot load the LiteRT model ({describe(exc)})") from None
        self.path = Path(path)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.input_shape = (None, *self.input["shape"][1:])
        self.output_shape = (None, *self.output["shape"][1:])
        self.batch = None
        self.lock = threading.Lock()  # one interpreter, several server threads

    def __call__(self, images, training: bool = False) -> np.ndarray:
        images = np.ascontiguousarray(images, dtype=np.float32)
        with self.lock:
            if images.shape[0] != self.batch:
                self.interpreter.resize_tensor_input(self.input["index"], images.shape)
                with native_info_silenced():
                    self.interpreter.allocate_tensors()
                self.batch = images.shape[0]
            self.interpreter.set_tensor(self.input["index"], images)
            self.interpreter.invoke()
            return self.interpreter.get_tensor(self.output["index"]).copy()
