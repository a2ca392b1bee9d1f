"""The experiments notebooks 05 and 06 run beside training and evaluation: the class-imbalance options compared
on cached features, a model's validation figures beside the constant baselines, and the label-shift study."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from ..config import Paths, UserError
from ..data.encode import load_splits, population
from ..data.io import write_json
from ..modelfolder.layout import read_manifest, resolve_model
from ..inference.predictor import load
from ..networks import registry
from ..networks.pretrained import backbone, classification_head
from ..scoring import calibration, metrics
from ..training.losses import make_loss
from ..training.train import (
    MONITOR,
    TrainConfig,
    cached_features,
    head_batches,
    monitored_metrics,
    split_tables,
    training_order,
)
from ..evaluation.evaluate import load_eval_data, map_labels
from . import shift

IMBALANCE_VARIANTS = {"bce": {}, "weighted": {"loss": "weighted"}, "focal": {"loss": "focal"},
                      "asymmetric": {"loss": "asymmetric"}, "oversample": {"oversample": True}}


def fit_head(features: dict, labels: dict, config: TrainConfig, n_genres: int):
    """A classification head trained on cached backbone features as `train` trains one (early stopping on the
    validation features); (head, epochs, seconds)."""
    keras.utils.set_random_seed(config.seed)
    order = training_order(labels["train"], config)
    head = classification_head(features["train"].shape[1], n_genres)
    head.compile(keras.optimizers.Adam(config.learning_rate), make_loss(config.loss, labels["train"]),
                 metrics=monitored_metrics())
    callbacks = [keras.callbacks.EarlyStopping(MONITOR, mode="max", patience=config.patience,
                                               restore_best_weights=True),
                 keras.callbacks.ReduceLROnPlateau(MONITOR, mode="max", factor=0.3,
                                                   patience=max(1, config.patience // 2))]
    start = time.perf_counter()
    batches, val_batches = head_batches(features, labels, order, config)
    history = head.fit(batches, validation_data=val_batches, epochs=config.epochs, shuffle=False,
                       callbacks=callbacks, verbose=0)
    return head, len(history.history["loss"]), round(time.perf_counter() - start, 1)


def learning_curve(paths: Paths | None = None, model: str = "efficientnet_lite0", sizes: list[int] | None = None,
                   seed: int = 0, compared: pd.DataFrame | None = None, **overrides) -> pd.DataFrame:
    """Validation macro AP of a head against the number of training posters: random subsets of the training
    split (every source), from a few hundred to all, each head trained on the cached backbone features as
    `train` trains one. Does more data still help? A curve still rising at the right says yes.

    compared: compare_imbalance's table for the same model and options; its `bce` head is the one this curve
    would train on all the training posters (same features, options and seed), so that point takes its figures."""
    paths = paths or Paths.default()
    base = TrainConfig(model=model, **overrides)
    known = compared.set_index("variant").loc["bce"] if compared is not None and "bce" in set(compared.variant) \
        and base.loss == "bce" and not base.oversample else None
    frames, vocabulary, labels = split_tables(paths, base.limit)
    extractor = backbone(base.model, base.input_size, base.weights, tta=base.tta)
    features = cached_features(extractor, frames, base, paths)
    total = len(features["train"])
    sizes = sorted({min(n, total) for n in (sizes or [total // 2**k for k in range(5, -1, -1)
                                                      if total // 2**k >= min(200, total)])})
    shuffled = np.random.default_rng(seed).permutation(total)
    rows = []
    for size in sizes:
        if size == total and known is not None:
            rows.append({"train_posters": size, **{k: known[k] for k in metrics.HEADLINE_KEYS},
                         "epochs": int(known["epochs"]), "seconds": known["seconds"]})
            print(f"{size} training posters: validation macro AP {known['macro_ap']:.3f} (the comparison's bce head)",
                  flush=True)
            continue
        chosen = np.sort(shuffled[:size])
        head, epochs, seconds = fit_head({"train": features["train"][chosen], "val": features["val"]},
                                         {"train": labels["train"][chosen], "val": labels["val"]}, base,
                                         len(vocabulary))
        scores = head.predict(features["val"], batch_size=1024, verbose=0)
        rows.append({"train_posters": size, **metrics.headline(labels["val"], scores), "epochs": epochs,
                     "seconds": seconds})
        print(f"{size} training posters: validation macro AP {rows[-1]['macro_ap']:.3f}", flush=True)
    return pd.DataFrame(rows)


def compare_imbalance(paths: Paths | None = None, model: str = "efficientnet_lite0",
                      variants: dict | None = None, **overrides) -> pd.DataFrame:
    """One head per class-imbalance option on the cached backbone features, compared on validation (raw scores,
    thresholds tuned on them), best macro AP first. Writes no model folder: train() the winner."""
    paths = paths or Paths.default()
    base = TrainConfig(model=model, **overrides)
    if not registry.is_pretrained(base.model):
        raise UserError(f"imbalance options are compared on backbone features; {model} is not a pretrained model")
    frames, vocabulary, labels = split_tables(paths, base.limit)
    extractor = backbone(base.model, base.input_size, base.weights, tta=base.tta)
    features = cached_features(extractor, frames, base, paths)
    rows = []
    for label, options in (variants or IMBALANCE_VARIANTS).items():
        config = dataclasses.replace(base, **options)
        head, epochs, seconds = fit_head(features, labels, config, len(vocabulary))
        scores = head.predict(features["val"], batch_size=1024, verbose=0)
        thresholds = metrics.tune_thresholds(labels["val"], scores)
        rows.append({"variant": label, **metrics.headline(labels["val"], scores),
                     **metrics.threshold_metrics(labels["val"], scores, thresholds),
                     "epochs": epochs, "seconds": seconds})
        print(f"{label}: validation macro AP {rows[-1]['macro_ap']:.3f} ({rows[-1]['epochs']} epochs)", flush=True)
    return pd.DataFrame(rows).sort_values("macro_ap", ascending=False).reset_index(drop=True)


def validation_summary(folder: Path, paths: Paths | None = None) -> pd.DataFrame:
    """A model's validation figures beside the constant baselines on the same posters."""
    frames, vocabulary = load_splits(paths or Paths.default())
    manifest = read_manifest(folder)
    y_val = frames["val"][vocabulary].to_numpy()
    if manifest["config"].get("limit"):
        y_val = y_val[: manifest["config"]["limit"]]
    y_train = population(frames["train"])[vocabulary].to_numpy()
    rows = {manifest["config"]["name"]: {k: manifest["validation_metrics"][k] for k in metrics.HEADLINE_KEYS},
            "baseline: 3 most frequent genres": metrics.headline(y_val, metrics.constant_scores(y_train, len(y_val))),
            "baseline: training prior": metrics.headline(y_val, metrics.constant_scores(y_train, len(y_val), None))}
    return pd.DataFrame(rows).T.round(3)


RESAMPLED_MIX = {"Drama": 0.55, "Comedy": 0.30, "Animation": 0.03}  # the shifted test split of notebook 06
# known shifts: the test split resampled to these mixes (the first as before, then two stronger ones)
KNOWN_SHIFTS = (RESAMPLED_MIX, {"Drama": 0.70, "Comedy": 0.15, "Action": 0.05},
                {"Horror": 0.35, "Comedy": 0.45, "Drama": 0.25})
NO_SHIFT_RESAMPLES = 3  # copies of the test split resampled at the training mix


def _mix_name(mix: dict) -> str:
    return ", ".join(f"{g} {s:.2f}" for g, s in mix.items())


def label_shift_study(model: str | Path, paths: Paths | None = None, outside: str | Path | None = None,
                      mixes: tuple[dict, ...] = KNOWN_SHIFTS, seed: int = 0, text: bool = True) -> dict:
    """Every prior estimator beside the unadapted model, the constant guess and the true-mix oracle, on:
    no shift (the test split, and copies resampled at the training mix), known shifts (the test split resampled
    to other mixes: pure label shift), each source's part of a merged test split, and an outside labelled poster
    folder; and a table of calibration error before and after calibration on each. The model reads the posters'
    words where it has a text head (text=False: the image alone). Tables are written to label_shift.json in the
    model folder; each set's kind is its name's first word (no shift, known shift, source, outside)."""
    paths = paths or Paths.default()
    trained = load(resolve_model(model, paths), text=text, text_cache=paths.cache / "text")
    sets, calibration_rows = {}, {}
    for data in [None] + ([outside] if outside is not None else []):
        frame, set_name = load_eval_data(data, paths)
        frame, y, _ = map_labels(frame, trained.vocabulary)
        raw, scores = trained.scores(frame, progress=True)
        calibration_rows[set_name] = calibration.report(y, raw, scores)
        if data is not None:
            sets[f"outside: {set_name}"] = (y, scores)
            continue
        sets["no shift: test"] = (y, scores)
        training_mix = {j: float(share) for j, share in enumerate(trained.train_prior) if y[:, j].any()}
        for copy in range(NO_SHIFT_RESAMPLES):
            index = shift.resample_to_mix(y, training_mix, seed=seed + copy)
            sets[f"no shift: test resampled at the training mix ({copy + 1})"] = (y[index], scores[index])
        for mix in (m for m in mixes if set(m) <= set(trained.genres)):
            index = shift.resample_to_mix(y, {trained.genres.index(g): s for g, s in mix.items()}, seed=seed)
            sets[f"known shift: test resampled ({_mix_name(mix)})"] = (y[index], scores[index])
        sources = sorted(frame["source"].unique()) if "source" in frame else []
        for source in sources if len(sources) > 1 else []:
            rows = (frame["source"] == source).to_numpy()
            sets[f"source: test {source}"] = (y[rows], scores[rows])
    tables = {name: shift.compare_estimators(y, scores, trained.train_prior, trained.thresholds,
                                                   trained.confusion, reference_posters=trained.validation_posters)
              for name, (y, scores) in sets.items()}
    tables[f"calibration ({trained.calibration.method})"] = pd.DataFrame(calibration_rows).T
    write_json({name: table.round(4).to_dict("index") for name, table in tables.items()},
               trained.folder / "label_shift.json")
    return tables


def adaptation_targets(tables: dict, estimator: str = "gated") -> pd.DataFrame:
    """Issue 35's targets for one estimator, set by set, from label_shift_study's tables: no shift, adapted top-3
    and micro-F1 within 0.002 of unadapted; a known shift, 80% or more of the oracle's gain in log-loss and micro-F1;
    another source's posters or an outside collection, top-3 not lower than unadapted."""
    rows = {}
    for name, table in tables.items():
        kind = name.split(":")[0]
        if estimator not in table.index:
            continue
        mine, plain = table.loc[estimator], table.loc["unadapted"]
        if kind == "no shift":
            moved = max(abs(mine["top3_hit_rate"] - plain["top3_hit_rate"]),
                        abs(mine["micro_f1@tuned"] - plain["micro_f1@tuned"]))
            rows[name] = {"target": "top-3 and micro-F1 within 0.002", "value": f"moved {moved:.4f}",
                          "met": bool(moved <= 0.002)}
        elif kind == "known shift":
            oracle = table.loc["oracle (true mix)"]
            shares = {}
            for column, sign in (("log_loss", -1), ("micro_f1@tuned", 1)):
                gain = sign * (oracle[column] - plain[column])
                shares[column] = sign * (mine[column] - plain[column]) / gain if gain > 1e-9 else float("nan")
            rows[name] = {"target": ">= 80% of the oracle's gain (log-loss, micro-F1)",
                          "value": f"{shares['log_loss']:.0%}, {shares['micro_f1@tuned']:.0%}",
                          "met": bool(min(shares.values()) >= 0.8)}
        elif kind in ("source", "outside"):
            rows[name] = {"target": "top-3 not lower than unadapted",
                          "value": f"{mine['top3_hit_rate']:.4f} vs {plain['top3_hit_rate']:.4f}",
                          "met": bool(mine["top3_hit_rate"] >= plain["top3_hit_rate"])}
    return pd.DataFrame(rows).T


def source_probe(features: np.ndarray, second: np.ndarray, folds: int = 5, seed: int = 0) -> tuple[float, float]:
    """How well a logistic probe tells two sources apart from a network's features: cross-validated ROC-AUC
    (mean, standard deviation over the folds). 0.5: the features carry nothing of the source; 1.0: everything."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    scores = cross_val_score(probe, features, np.asarray(second, dtype=int), scoring="roc_auc",
                             cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    return float(scores.mean()), float(scores.std())
