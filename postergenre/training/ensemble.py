"""`postergenre blend`: trained models of one vocabulary as one network, their log-odds averaged.

The weights are chosen on the validation split by macro AP (a grid of steps of 0.1 that sum to 1), from the
members' outputs as the blended network computes them (a smaller member sees the poster resized inside it);
then the blend is calibrated, its thresholds tuned and its folder written as any trained model's, with the
members' networks in `members/` and one model.tflite for prediction.
"""
from __future__ import annotations

import itertools
import shutil
import time
from pathlib import Path

import numpy as np

from ..config import Paths, UserError
from ..modelfolder.network import export_litert, folder_network, ship_member
from ..modelfolder.layout import ENSEMBLE, MEMBERS_FOLDER, read_manifest, read_vocabulary, resolve_model
from ..networks.blend import blend_network, stacked_network
from ..scoring import metrics
from ..scoring.calibration import sigmoid
from ..text.head import HEAD_ARRAYS, HEAD_JSON
from .train import TrainConfig, calibrated_on_validation, network_outputs, save_model_folder, split_tables, \
    vocabulary_info

STEP = 0.1


def weight_grid(n_members: int, step: float = STEP) -> np.ndarray:
    """Every weighting of n members in steps of `step` that sums to 1, each member weighted above 0."""
    units = round(1 / step)
    rows = [c for c in itertools.product(range(1, units + 1), repeat=n_members) if sum(c) == units]
    return np.array(rows, dtype=float) / units


def blended(weights: np.ndarray, member_log_odds: np.ndarray) -> np.ndarray:
    """What the blend network outputs, from its members' log-odds (posters x members x genres)."""
    return sigmoid(np.einsum("m,pmg->pg", weights, member_log_odds))


def choose_weights(y_val: np.ndarray, member_log_odds: np.ndarray, step: float = STEP) -> tuple[np.ndarray, list]:
    """(the weights with the highest validation macro AP, every (weights, macro AP) tried);
    member_log_odds: posters x members x genres."""
    tried = [(w, metrics.average_precision(y_val, blended(w, member_log_odds)))
             for w in weight_grid(member_log_odds.shape[1], step)]
    best = max(tried, key=lambda pair: pair[1])[0]  # first of equals: the grid's order
    return best, [(w.round(3).tolist(), round(float(ap), 5)) for w, ap in tried]


def member_folders_checked(names: list[str], paths: Paths) -> tuple[list[Path], list[dict], list[str]]:
    """The members' folders, their manifests and their genres: trained models of one vocabulary, cropped or fitted
    alike."""
    if len(names) < 2:
        raise UserError("a blend needs two or more trained models (--members A B ...)")
    folders = [resolve_model(name, paths) for name in names]
    manifests = [read_manifest(folder) for folder in folders]
    genres = [read_vocabulary(folder)["genres"] for folder in folders]
    fits = {folder.name: manifest.get("fit", "crop") for folder, manifest in zip(folders, manifests)}
    for folder, vocabulary in zip(folders[1:], genres[1:]):
        if vocabulary != genres[0]:
            raise UserError(f"{folder}: its genres differ from {folders[0].name}'s ({len(vocabulary)} against "
                            f"{len(genres[0])}); blend models trained on the same split")
    if len(set(fits.values())) > 1:
        raise UserError(f"the members meet the poster size differently ({fits}); blend models of one fit")
    if any(manifest.get("model") == ENSEMBLE for manifest in manifests):
        raise UserError("a blend cannot hold another blend: name its members instead")
    return folders, manifests, genres[0]


def blend(names: list[str], name: str, paths: Paths | None = None, calibration: str = "auto",
          limit: int | None = None) -> Path:
    """Blend trained models into models/<name>; returns its folder."""
    paths = paths or Paths.default()
    start = time.perf_counter()
    folders, manifests, genres = member_folders_checked(names, paths)
    frames, vocabulary, labels = split_tables(paths, limit)
    if genres != vocabulary:
        raise UserError(f"{folders[0]}: trained on other genres than the project's split ({paths.processed})")
    input_size = max((tuple(m["input_size"]) for m in manifests), key=lambda size: size[0] * size[1])
    config = TrainConfig(model=ENSEMBLE, name=name, input_size=input_size, fit=manifests[0].get("fit", "crop"),
                         calibration=calibration, limit=limit)
    networks = [folder_network(folder, manifest) for folder, manifest in zip(folders, manifests)]
    log_odds = network_outputs(stacked_network(networks, input_size), frames["val"], config, "members val",
                               progress=True)
    weights, tried = choose_weights(labels["val"], log_odds)
    folder = paths.models / name
    shutil.rmtree(folder / MEMBERS_FOLDER, ignore_errors=True)
    for stale in (HEAD_JSON, HEAD_ARRAYS):  # a text head fused with an earlier blend's outputs
        (folder / stale).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    for member in folders:
        ship_member(member, folder / MEMBERS_FOLDER / member.name)
    extra = {"members": [{"name": f.name, "model": m["model"], "folder": f"{MEMBERS_FOLDER}/{f.name}",
                          "weight": round(float(w), 3), "input_size": m["input_size"],
                          "validation_macro_ap": round(metrics.average_precision(labels["val"],
                                                                                 sigmoid(log_odds[:, i])), 5)}
                         for i, (f, m, w) in enumerate(zip(folders, manifests, weights))],
             "weights_tried": tried, "train_posters": len(frames["train"])}
    val_scores = blended(weights, log_odds)
    thresholds, val_metrics = calibrated_on_validation(folder, labels["val"], val_scores, config, extra)
    network = blend_network(networks, weights.tolist(), input_size)
    save_model_folder(folder, network, vocabulary_info(paths, vocabulary, frames["train"]), thresholds, config,
                      paths, time.perf_counter() - start, val_metrics, extra, save=export_litert)
    print(f"{name}: weights {dict(zip(names, weights.round(2).tolist()))}; validation macro AP "
          f"{val_metrics['macro_ap']:.3f} (members {', '.join(str(m['validation_macro_ap']) for m in extra['members'])}),"
          f" top-3 hit rate {val_metrics['top3_hit_rate']:.3f} -> {folder}")
    return folder

