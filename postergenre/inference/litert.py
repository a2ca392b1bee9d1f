"""A model folder's network as a LiteRT (.tflite) file, run without TensorFlow.

modelfolder.network.export_litert writes model.tflite (backbone + head, uncalibrated output) when a model is trained or
shipped; it needs TensorFlow. LiteNetwork runs the file with the LiteRT interpreter (`ai-edge-litert`): `postergenre predict`
and `postergenre serve` use it, so a poster's genres come without importing TensorFlow (7 s of a cold start).
The calibration is applied afterwards in numpy, exactly as for the Keras network.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from ..config import UserError, describe
from ..data.io import native_info_silenced

THREADS_VARIABLE = "POSTERGENRE_LITERT_THREADS"  # the interpreter's threads; unset: one a core


def thread_count() -> int:
    """The interpreter's thread count: POSTERGENRE_LITERT_THREADS, else one a core (benchmarks/bench_predict.py
    --threads measures the choice)."""
    value = os.environ.get(THREADS_VARIABLE, "")
    if value and not (value.isdigit() and int(value) > 0):
        raise UserError(f"{THREADS_VARIABLE}={value!r}: give a whole number of threads, 1 or more")
    return int(value) if value else os.cpu_count() or 1


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
