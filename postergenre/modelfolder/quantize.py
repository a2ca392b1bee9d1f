"""A model folder's network as a smaller LiteRT file: float16 weights, int8 weights with float activations
("dynamic"), or integers throughout with float input and output ("int8", its activations' ranges measured on a
representative set of training posters, prepared exactly as the network sees them). Needs TensorFlow; the file it
writes runs on LiteRT like any model.tflite."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import QUANTIZATIONS, UserError
from ..data.images import PosterError, load_poster
from .layout import TFLITE_FILE, publish, read_manifest, write_manifest
from ..data.io import native_info_silenced

REPRESENTATIVE_POSTERS = 300  # training posters whose activations set int8's ranges


def representative_images(posters: list[str], size: tuple[int, int], fit: str, n: int = REPRESENTATIVE_POSTERS,
                          seed: int = 0) -> np.ndarray:
    """`n` posters drawn at random, each as the network takes it: fitted to its input size, float32 0..255."""
    order = np.random.default_rng(seed).permutation(len(posters))
    images = []
    for i in order:
        try:
            images.append(load_poster(posters[i], size, fit).astype(np.float32))
        except PosterError:
            continue
        if len(images) == n:
            break
    if not images:
        raise UserError("no representative poster could be read for int8 quantization")
    return np.stack(images)


def quantized_tflite(model, mode: str, representative: np.ndarray | None = None) -> bytes:
    """The Keras network converted to LiteRT with `mode` (QUANTIZATIONS); int8 needs `representative` images."""
    import tensorflow as tf
    if mode not in QUANTIZATIONS:
        raise UserError(f"unknown quantization {mode!r}; choose {', '.join(QUANTIZATIONS)}")
    height, width = model.input_shape[1:3]
    function = tf.function(lambda images: model(images, training=False), autograph=False)
    concrete = function.get_concrete_function(tf.TensorSpec([None, height, width, 3], tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])  # (passing the model as its trackable
    # object gave NaN outputs: its variables are captured by the function already)
    if mode != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        if representative is None or not len(representative):
            raise UserError("int8 quantization needs representative posters")

        def batches():
            for image in representative:
                yield [image[None]]
        converter.representative_dataset = batches
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]  # float input and output kept
    with native_info_silenced():
        return converter.convert()


def quantize_folder(folder: Path, mode: str, training_posters: list[str] | None = None,
                    n_representative: int = REPRESENTATIVE_POSTERS) -> Path:
    """Write the folder's model.tflite quantized (`mode`), and record how in its manifest (`quantization`)."""
    from .layout import network_files
    from .network import folder_network
    folder = Path(folder)
    manifest = read_manifest(folder)
    model = folder_network(folder, manifest)
    representative = None
    if mode == "int8":
        if not training_posters:
            raise UserError("int8 quantization needs the training posters (the project's train split)")
        representative = representative_images(training_posters, tuple(manifest["input_size"]),
                                               manifest.get("fit", "crop"), n_representative)
    data = quantized_tflite(model, mode, representative)
    tmp = folder / f".partial.{TFLITE_FILE}"
    tmp.write_bytes(data)
    path = publish(tmp, folder, network_files(folder))
    manifest["quantization"] = {"mode": mode, "tflite_bytes": len(data),
                                "representative_posters": 0 if representative is None else len(representative)}
    write_manifest(manifest, folder)
    return path
