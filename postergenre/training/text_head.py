"""Stage 5b: a text head on the words of the training posters, fused with a trained model's image network.

The words of every training and validation poster are read once (cached); the text head's regularisation and
the fusion weight are chosen on validation by macro AP, then the fused output is calibrated and its thresholds
tuned on validation as the image model's were. The model folder gains text_head.json / text_head.npz and its
manifest a `text` section (OCR package, version, settings, the validation figures of image, text and fused).
No TensorFlow: the image network runs on LiteRT.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..config import SEED, Paths, UserError
from ..data.encode import load_splits
from ..modelfolder.layout import read_manifest, resolve_model, write_manifest
from ..inference.predictor import load
from ..scoring import calibration, metrics
from ..scoring.label_shift import confusion_rates
from ..text.head import C_GRID, WEIGHT_GRID, fit_text_head, fuse
from ..text.ocr import OcrSettings, Reader


def read_split_texts(frames: dict, paths: Paths, settings: OcrSettings, progress: bool) -> dict[str, list[str]]:
    reader = Reader(settings, paths.cache / "text")
    return {split: [t.text for t in reader.read(frame.poster_path, progress, desc=f"read text ({split})")]
            for split, frame in frames.items()}


def best_of(values: dict):
    """The setting with the highest score; the first of equals (max keeps it; the grids run from simple to strong)."""
    return max(values, key=values.get)


def train_text_head(model: str | Path, paths: Paths | None = None, settings: OcrSettings | None = None,
                    seed: int = SEED, progress: bool = True) -> Path:
    """Add a text head to a trained model folder; returns the folder."""
    paths = paths or Paths.default()
    folder = resolve_model(model, paths)
    predictor = load(folder, text=False)
    frames, vocabulary = load_splits(paths)
    if vocabulary != predictor.genres:
        raise UserError(f"{folder}: the model's genres are not this project's ({paths.genres_json}); train the "
                        f"text head in the project the model was trained in")
    frames = {s: frames[s] for s in ("train", "val")}
    labels = {s: f[vocabulary].to_numpy(float) for s, f in frames.items()}
    start = time.perf_counter()
    settings = settings or OcrSettings()
    texts = read_split_texts(frames, paths, settings, progress)
    read_seconds = time.perf_counter() - start
    image_val, _ = predictor.scores(frames["val"], progress=progress)

    heads = {c: fit_text_head(texts["train"], labels["train"], vocabulary, c, seed) for c in C_GRID}
    text_ap = {c: metrics.fast_average_precision(labels["val"], h.probabilities(texts["val"]))
               for c, h in heads.items()}
    c = best_of(text_ap)
    head = heads[c]
    evidence = head.evidence(texts["val"])
    fused_ap = {w: metrics.fast_average_precision(labels["val"], fuse(image_val, evidence, w)) for w in WEIGHT_GRID}
    weight = best_of(fused_ap)
    fused_raw = fuse(image_val, evidence, weight)
    calibrator, losses = calibration.choose(labels["val"], fused_raw, seed=seed)
    fused = calibrator.apply(fused_raw)
    thresholds = metrics.tune_thresholds(labels["val"], fused)

    def figures(scores):
        return {"macro_ap": round(metrics.fast_average_precision(labels["val"], scores), 4),
                "top3_hit_rate": round(metrics.top_k_hit_rate(labels["val"], scores, 3), 4)}

    head.weight = float(weight)
    head.info = {"C": c, "weight": float(weight), "ocr": settings.describe(),
                 "train_posters": len(texts["train"]),
                 "train_posters_with_words": int(sum(bool(t.strip()) for t in texts["train"])),
                 "read_seconds": round(read_seconds, 1),
                 "validation": {"image": figures(predictor.calibrate(image_val)),
                                "text": figures(head.probabilities(texts["val"])), "fused": figures(fused)},
                 "validation_text_ap_by_C": {str(k): round(v, 4) for k, v in text_ap.items()},
                 "validation_fused_ap_by_weight": {str(k): round(v, 4) for k, v in fused_ap.items()},
                 "fusion": {"calibration": calibrator.to_json(), "calibration_cv_log_loss": losses.round(5).to_dict(),
                            "thresholds": [float(t) for t in thresholds],
                            "confusion": confusion_rates(labels["val"], fused)}}
    head.save(folder)
    manifest = read_manifest(folder)
    manifest["text"] = {k: head.info[k] for k in ("C", "weight", "ocr", "train_posters", "train_posters_with_words",
                                                 "validation")}
    write_manifest(manifest, folder)
    return folder
