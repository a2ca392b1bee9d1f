"""What the words on the poster add: a model with a text head scored on the same posters as its image alone, its
text alone, and the two fused, with paired bootstrap intervals of the gain, the gain per genre, and the posters
where the words changed the answer. Written as text_gain_<set>.json into the model folder (notebook 05 shows it).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..config import Paths, UserError
from ..data.io import write_json
from ..modelfolder.layout import resolve_model
from ..inference.predictor import load
from ..scoring import metrics
from ..evaluation.evaluate import bootstrap, load_eval_data, map_labels

GAIN_METRICS = ("macro_ap", "top3_hit_rate", "micro_f1@tuned")


def paired_gain(y, image, fused, thresholds: dict, n_boot: int = 200, seed: int = 0) -> dict:
    """{metric: [fused minus image, low, high]}: the same resampled posters for both, so the interval is the
    gain's own (narrower than the two models' intervals side by side)."""
    def point(idx):
        out = {}
        for name, scores in (("image", image), ("fused", fused)):
            t = thresholds[name]
            out[name] = {"macro_ap": metrics.fast_average_precision(y[idx], scores[idx]),
                         "top3_hit_rate": metrics.top_k_hit_rate(y[idx], scores[idx], 3),
                         "micro_f1@tuned": metrics.fast_threshold_metrics(y[idx], scores[idx], t)["micro_f1"]}
        return {m: out["fused"][m] - out["image"][m] for m in GAIN_METRICS}
    rng = np.random.default_rng(seed)
    full = point(np.arange(len(y)))
    samples = [point(rng.integers(0, len(y), len(y))) for _ in range(n_boot)]
    return {m: [float(full[m]), *map(float, np.nanpercentile([s[m] for s in samples], [2.5, 97.5]))]
            for m in GAIN_METRICS}


def changed_answers(frame: pd.DataFrame, y, image, fused, texts, genres, count: int = 5) -> list[dict]:
    """Posters whose top-3 guesses found a true genre only once the words were added, strongest change first."""
    top = lambda s: np.argsort(-s, axis=1)[:, :3]  # noqa: E731
    hit = lambda s: (np.take_along_axis(y, top(s), axis=1) > 0).any(axis=1)  # noqa: E731
    won = np.flatnonzero(hit(fused) & ~hit(image) & np.array([bool(t.strip()) for t in texts]))
    strength = np.abs(fused - image).max(axis=1)[won]
    rows = []
    for i in won[np.argsort(-strength)][:count]:
        rows.append({"title": str(frame.title.iloc[i]) if "title" in frame else "", "id": str(frame.get("id", pd.Series(
            [""] * len(frame))).iloc[i]), "words": texts[i], "genres": [g for g, v in zip(genres, y[i]) if v],
            "image_top3": [(genres[j], round(float(image[i, j]), 3)) for j in top(image[i:i + 1])[0]],
            "fused_top3": [(genres[j], round(float(fused[i, j]), 3)) for j in top(fused[i:i + 1])[0]]})
    return rows


def text_gain(model: str | Path = "default", data: str | Path | None = None, paths: Paths | None = None,
              n_boot: int = 200, progress: bool = True) -> dict:
    """Image, text and fused on one set (the test split, a split CSV or a poster folder); written beside the model."""
    paths = paths or Paths.default()
    folder = resolve_model(model, paths)
    fused_model = load(folder, text=True, text_cache=paths.cache / "text")
    if fused_model.text_head is None:
        raise UserError(f"{folder}: no text head (add one with `postergenre train-text --model {folder.name}`)")
    image_model = load(folder, text=False)
    posters, set_name = load_eval_data(data, paths)
    frame, y, mapping = map_labels(posters, fused_model.vocabulary)
    if len(frame) == 0:
        raise UserError(f"{data or paths.split_csv('test')}: no poster has any of the model's genres")
    read = fused_model.read_words(frame.poster_path, progress)
    texts = [t.text for t in read]
    image_raw, image = image_model.scores(frame, progress=progress)
    fused = fused_model.calibrate(fused_model.fuse_words(image_raw, read))  # the network run once for both
    text = fused_model.text_head.probabilities(texts)
    thresholds = {"image": image_model.thresholds, "text": metrics.tune_thresholds(y, text),
                  "fused": fused_model.thresholds}
    genres = fused_model.genres
    per_genre = pd.DataFrame({"genre": genres, "positives": y.sum(axis=0), "image_ap": metrics.per_genre_ap(y, image),
                              "text_ap": metrics.per_genre_ap(y, text), "fused_ap": metrics.per_genre_ap(y, fused)})
    per_genre["gain"] = per_genre.fused_ap - per_genre.image_ap
    result = {"model": folder.name, "set": set_name, "posters": int(len(frame)), "mapping": mapping,
              "posters_with_words": int(sum(bool(t.strip()) for t in texts)),
              "words_per_poster": round(float(np.mean([len(t.split()) for t in texts])), 2),
              "metrics": bootstrap(y, {"image": image, "text": text, "fused": fused}, thresholds, n_boot=n_boot),
              "gain": paired_gain(y, image, fused, thresholds, n_boot),
              "text_thresholds_tuned_on_this_set": True,
              "per_genre": per_genre.round(4).replace({np.nan: None}).to_dict("records"),
              "changed_answers": changed_answers(frame, y, image, fused, texts, genres)}
    write_json(result, folder / f"text_gain_{set_name}.json")
    return result


def gain_table(result: dict) -> pd.DataFrame:
    """Image, text and fused side by side, with the paired gain, for a notebook."""
    rows = {name: {m: f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]" for m, v in figures.items() if m in GAIN_METRICS}
            for name, figures in result["metrics"].items()}
    rows["gain (fused - image)"] = {m: f"{v[0]:+.3f} [{v[1]:+.3f}, {v[2]:+.3f}]" for m, v in result["gain"].items()}
    return pd.DataFrame(rows).T[list(GAIN_METRICS)]
