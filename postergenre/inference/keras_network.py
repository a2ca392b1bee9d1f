"""The Keras network as the predictor runs it, and Grad-CAM, which explains it.

The only module of `inference` that imports TensorFlow; the predictor imports it when a model runs on
Keras or Grad-CAM is asked for, never on the LiteRT path (an import-linter contract holds this).
"""
from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ..config import UserError
from ..modelfolder.layout import TFLITE_FILE, read_manifest
from ..modelfolder.lean import gradcam_member
from ..modelfolder.network import folder_network, write_litert
from ..networks.registry import BACKBONES
from . import litert


class KerasNetwork:
    """A Keras network as the predictor's callable: float32 image batch in, numpy array out.

    The first batch runs eagerly (tracing a graph would cost more than one prediction); later batches run
    through one traced graph."""

    def __init__(self, model: keras.Model):
        self.model = model
        self.output_shape = model.output_shape
        self.calls = 0
        self._graph = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def __call__(self, images) -> np.ndarray:
        self.calls += 1
        run = self._graph if self.calls > 1 else (lambda x: self.model(x, training=False))
        return np.asarray(run(tf.convert_to_tensor(images, tf.float32)))


LITERT_FROM_POSTERS = 1000  # fewer run on Keras: the export costs what Keras takes for 500-800 posters


@contextlib.contextmanager
def fast_network(model: keras.Model, n_posters: int, min_posters: int = LITERT_FROM_POSTERS):
    """A Keras network as the fastest runner for `n_posters` posters: exported to LiteRT (a temporary file)
    when there are at least `min_posters`, else the network itself. On this 2-core CPU LiteRT runs
    EfficientNet-Lite three to four times as fast as Keras; outputs agree within 1e-5
    relative, and it is the runtime that predicts. A network the converter refuses runs on Keras."""
    if n_posters < min_posters:
        yield KerasNetwork(model)
        return
    with tempfile.TemporaryDirectory(prefix="postergenre_litert_") as folder:
        path = Path(folder) / TFLITE_FILE
        refused = write_litert(model, path)
        if refused:
            print(f"{model.name}: runs on Keras, LiteRT cannot take it ({refused})")
        yield KerasNetwork(model) if refused else litert.LiteNetwork(path)


class GradCam:
    """Heatmaps of where the evidence for a genre lies, with the gradient graph traced once and kept. A blend's
    are drawn by one member (lean.gradcam_member: the heaviest-weighted that keeps its network), on the poster
    resized for it."""

    def __init__(self, folder: Path):
        folder = Path(folder)
        member = gradcam_member(folder, read_manifest(folder))
        manifest = read_manifest(member)
        network = folder_network(member, manifest)
        self.input_size = tuple(network.input_shape[1:3])
        layer_name = BACKBONES[manifest["model"]].last_conv if manifest.get("model") in BACKBONES else None
        try:
            conv = network.get_layer(layer_name)
        except ValueError:
            raise UserError(f"{member}: no layer {layer_name!r} for Grad-CAM in this model") from None
        grad_model = keras.Model(network.inputs, [conv.output, network.output])

        @tf.function(reduce_retracing=True)
        def evidence(image, indices):
            # one forward pass for all the genres asked, then each genre's gradient back to the last convolution's
            # activations: only the head lies between, so a genre costs a small backward pass, not a forward one
            with tf.GradientTape() as tape:
                activations, probabilities = grad_model(image, training=False)
                scores = tf.gather(probabilities[0], indices)
            gradients = tape.jacobian(scores, activations)[:, 0]  # genres x height x width x channels
            weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
            return tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1))

        self._evidence = evidence

    def __call__(self, image: np.ndarray, indices: int | list[int]) -> np.ndarray:
        """Heatmaps (image height x width, 0..1) for genre index `indices`, or a stack of them for a list."""
        many = np.ndim(indices) > 0
        wanted = tf.constant(np.atleast_1d(indices).astype(np.int32))
        x = tf.convert_to_tensor(image[None].astype(np.float32))
        if tuple(image.shape[:2]) != self.input_size:
            x = tf.image.resize(x, self.input_size)
        cams = self._evidence(x, wanted)
        cams = tf.image.resize(cams[..., None], image.shape[:2])[..., 0].numpy()
        peaks = cams.max(axis=(1, 2), keepdims=True)
        cams = np.divide(cams, peaks, out=np.zeros_like(cams), where=peaks > 0)
        return cams if many else cams[0]

