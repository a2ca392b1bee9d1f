"""Stage 4/5: train the seeds' custom CNN, or a pretrained backbone in two phases.

Phase 1 (pretrained): backbone features are computed once and cached on disk,
keyed by model, input size and data; the head trains on them in seconds.
Phase 2 (optional): the top of the backbone is fine-tuned on augmented images.

A model is a folder models/<name>/ with model.keras (+ model.h5), genres.json,
thresholds.json, history.csv, curves.png and manifest.json. Training state is
backed up every epoch, so a killed run resumes where it stopped.
"""
from __future__ import annotations

import functools
import hashlib
import os
import shutil
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from ..config import Paths, UserError
from ..data.dataset import array_batches, cache_key, make_dataset
from ..data.encode import SPLITS, load_splits, population
from ..data.io import read_json
from ..inference.batches import run_network
from ..inference.keras_network import fast_network
from ..modelfolder.network import save_head, save_network
from ..modelfolder.provenance import build_manifest
from ..modelfolder.card import write_model_card
from ..modelfolder.layout import CURVES_FILE, write_calibration, write_model_folder
from ..networks import registry
from ..networks.pretrained import backbone, classification_head, unfreeze_top, with_head
from ..scoring import calibration, metrics
from ..scoring.label_shift import confusion_rates
from . import cluster, top_blocks
from .checkpoint import TrainingState
from .curves import training_curves
from .losses import make_loss, oversample_indices
from .options import TrainConfig

MONITOR = "val_pr_auc"  # PR-AUC over genres, Keras' streaming estimate of macro average precision


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return cluster.strategy()
    raise UserError(f"unknown strategy {name!r}; choose none, mirrored or multiworker")


class WeightFingerprint(keras.callbacks.Callback):
    """A digest of every weight after each epoch: the same line from every worker shows they are in step."""

    def __init__(self, role: cluster.Role):
        super().__init__()
        self.role = role

    def on_epoch_end(self, epoch, logs=None):
        digest = hashlib.sha256()
        for weight in self.model.get_weights():
            digest.update(np.ascontiguousarray(weight).tobytes())
        print(f"worker {self.role.index}: epoch {epoch + 1} weights sha256 {digest.hexdigest()[:16]}", flush=True)


def monitored_metrics():
    return [keras.metrics.AUC(curve="PR", multi_label=True, name="pr_auc"),
            keras.metrics.AUC(curve="ROC", multi_label=True, name="roc_auc")]


class OneCycle(keras.callbacks.Callback):
    """Learning rate rising linearly to `peak` over the first epoch, then a cosine down to zero at the last."""

    def __init__(self, peak: float, epochs: int, steps_per_epoch: int):
        super().__init__()
        self.peak, self.epochs, self.steps, self.epoch = peak, epochs, max(1, steps_per_epoch), 0

    def rate(self, step: int) -> float:
        warm, total = self.steps, self.epochs * self.steps
        if step < warm:
            return self.peak * (step + 1) / warm
        return self.peak * 0.5 * (1 + np.cos(np.pi * min(1.0, (step - warm) / max(1, total - warm))))

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch  # also right after a resume, which starts at a later epoch

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate.assign(self.rate(self.epoch * self.steps + batch))


def _callbacks(folder: Path, phase: str, patience: int, schedule: keras.callbacks.Callback | None = None,
               work: Path | None = None) -> tuple[list, TrainingState]:
    """schedule: a learning-rate callback; without one, the rate drops on a plateau of MONITOR.
    work: where this process writes (a multi-worker run's other workers: a scratch folder; `folder` is read)."""
    work = work or folder
    history = work / ("history.csv" if phase == "main" else f"history_{phase}.csv")
    early_stopping = keras.callbacks.EarlyStopping(monitor=MONITOR, mode="max", patience=patience)
    if schedule is None:
        schedule = keras.callbacks.ReduceLROnPlateau(monitor=MONITOR, mode="max", factor=0.3,
                                                     patience=max(1, patience // 2))
    state = TrainingState(folder / f"backup_{phase}", MONITOR, restores=[early_stopping, schedule],
                          write_to=work / f"backup_{phase}")
    if not state.resuming:
        history.unlink(missing_ok=True)  # a fresh run; a resumed one appends
    # The log is written before the state: a kill between them repeats an epoch on resume
    # (read_history keeps the last row of an epoch) rather than losing one.
    return [keras.callbacks.CSVLogger(str(history), append=True), early_stopping, schedule, state], state


def read_history(path: Path) -> pd.DataFrame:
    """A training log, one row per epoch (the last, where a resumed run repeated one)."""
    history = pd.read_csv(path)
    return history.drop_duplicates("epoch", keep="last").sort_values("epoch").reset_index(drop=True)


def _fit(model, folder, phase, patience, *args, schedule=None, role: cluster.Role | None = None, work=None,
         **kwargs) -> TrainingState:
    """model.fit that resumes a killed run and leaves the model at its best epoch by MONITOR.

    The returned state knows the time earlier, killed runs spent; finish() it once the model is saved.
    """
    role = role or cluster.Role()
    callbacks, state = _callbacks(folder, phase, patience, schedule, work)
    if role.distributed:
        callbacks.append(WeightFingerprint(role))
        cluster.keras_fit_fixes(model)
    try:
        model.fit(*args, callbacks=callbacks, verbose=1 if sys.stdout.isatty() else 2, **kwargs)
    except Exception as exc:
        if role.distributed and cluster.is_lost_peer(exc):
            raise UserError(f"worker {role.index} of {role.workers}: lost contact with another worker "
                            f"({type(exc).__name__}); run the same command on every worker again to resume "
                            f"from the chief's last backup") from None
        raise
    state.restore_best()
    return state


def network_outputs(network: keras.Model, frame: pd.DataFrame, config: TrainConfig, desc: str = "predict",
                    progress: bool = False) -> np.ndarray:
    """A network's outputs for every poster of a cleaned split (inference.batches.run_network)."""
    distributed = config.strategy != "none"  # its variables belong to the strategy: Keras runs it
    with fast_network(network, 0 if distributed else len(frame)) as runner:
        outputs, errors = run_network(runner, frame.poster_path, config.input_size, config.fit, config.batch_size,
                                      progress, desc)
    failed = [error for error in errors if error]
    if failed:
        raise UserError(f"{len(failed)} posters of a cleaned split could not be read (run `postergenre clean` "
                        f"again), the first: {failed[0]}")
    return outputs


def cached_features(extractor: keras.Model, frames: dict, config: TrainConfig, paths: Paths,
                    splits: tuple[str, ...] = ("train", "val")) -> dict[str, np.ndarray]:
    """Pooled backbone features of every poster of each split, computed once and cached on disk. The splits not
    cached yet run through the network in one pass (one LiteRT export for all of them)."""
    tta = "_tta" if config.tta else ""
    prefix = f"{config.model}_{config.input_size[0]}x{config.input_size[1]}_{config.fit}{tta}"
    files = {s: paths.cache / "features" / f"{prefix}_{cache_key(frames[s], config.input_size, config.fit)}.npy"
             for s in splits}
    features = {s: np.load(files[s]) for s in splits if config.cache and files[s].exists()}
    missing = [s for s in splits if s not in features]
    if missing:
        together = network_outputs(extractor, pd.concat([frames[s] for s in missing]), config,
                                   f"features {'+'.join(missing)}", progress=True)  # float32: no second copy
        parts = np.split(together, np.cumsum([len(frames[s]) for s in missing])[:-1])
        for split, part in zip(missing, parts):
            features[split] = part
            if config.cache:
                files[split].parent.mkdir(parents=True, exist_ok=True)
                tmp = files[split].with_suffix(f".{os.getpid()}.tmp.npy")  # workers of one run may write it at once
                np.save(tmp, part)
                tmp.replace(files[split])
    return {s: features[s] for s in splits}


def _image_cache(paths: Paths, config: TrainConfig, role: cluster.Role) -> Path | None:
    """Decoded images cached on disk; each worker of a multi-worker run on this machine has its own file."""
    if not config.cache:
        return None
    return paths.cache / "images" if role.chief else paths.cache / "images" / f"worker{role.index}"


def split_tables(paths: Paths, limit: int | None):
    """The split tables (the first `limit` rows of each, if given), the vocabulary, and multi-hot labels."""
    frames, vocabulary = load_splits(paths)
    if limit:
        frames = {s: f.head(limit) for s, f in frames.items()}
    return frames, vocabulary, {s: frames[s][vocabulary].to_numpy(np.float32) for s in SPLITS}


def head_batches(features: dict, labels: dict, order: np.ndarray, config: TrainConfig):
    """Training and validation batches for a head on cached features, each array held once. With
    `feature_variants`, features["train"] is the list of the training posters' variants, one drawn a poster."""
    if config.feature_variants:
        train = top_blocks.variant_batches(features["train"], labels["train"], order, config.head_batch_size,
                                           config.seed)
    else:
        train = array_batches(features["train"], labels["train"], config.head_batch_size, order, seed=config.seed)
    return train, array_batches(features["val"], labels["val"], 1024)


def variant_features(extractor: keras.Model, frames: dict, config: TrainConfig, paths: Paths) -> dict:
    """The validation posters' features as stored, and the training posters' as `feature_variants` variants
    re-saved at random JPEG qualities (so that how blocky a source's files are tells the head nothing), the last
    `photo_variants` of them photographed, each computed once and cached."""
    plan = top_blocks.variant_plan(len(frames["train"]), config.feature_variants, True, config.seed)
    photos = top_blocks.photo_seeds(len(plan), config.photo_variants, config.seed, phase=1)
    train = [top_blocks.cached_activations(extractor, frames["train"], config.input_size, config.fit, paths,
                                           qualities, mirror, f"features train {v + 1}/{len(plan)}", config.cache,
                                           photo=photo)
             for v, ((qualities, mirror), photo) in enumerate(zip(plan, photos))]
    return {"train": train, **cached_features(extractor, frames, config, paths, splits=("val",))}


def training_order(y_train: np.ndarray, config: TrainConfig) -> np.ndarray:
    return oversample_indices(y_train, config.seed) if config.oversample else np.arange(len(y_train))


def train(config: TrainConfig, paths: Paths | None = None) -> Path:
    """Train one model; returns its folder."""
    strategy = make_strategy(config.strategy)  # first: a multi-worker strategy must start before other TF work
    role = cluster.role() if config.strategy == "multiworker" else cluster.Role()
    paths = paths or Paths.default()
    frames, vocabulary, labels = split_tables(paths, config.limit)
    folder = paths.models / config.name
    # only the chief writes the model folder; another worker writes to scratch, removed at the end
    work = folder if role.chief else paths.cache / "workers" / f"{config.name}_worker{role.index}"
    if not role.chief:
        shutil.rmtree(work, ignore_errors=True)  # a failed run's; resuming reads the chief's backup
    work.mkdir(parents=True, exist_ok=True)
    fit_model = functools.partial(_fit, role=role, work=work)
    keras.utils.set_random_seed(config.seed)
    order = training_order(labels["train"], config)
    start = time.perf_counter()
    extra = {}

    if registry.is_pretrained(config.model):
        with strategy.scope():
            extractor = backbone(config.model, config.input_size, config.weights, tta=config.tta)
        features = variant_features(extractor, frames, config, paths) if config.feature_variants \
            else cached_features(extractor, frames, config, paths)
        extra["feature_seconds"] = round(time.perf_counter() - start, 1)
        with strategy.scope():
            head = classification_head(features["val"].shape[1], len(vocabulary))
            head.compile(keras.optimizers.Adam(config.learning_rate), make_loss(config.loss, labels["train"]),
                         metrics=monitored_metrics())
        head_start = time.perf_counter()
        batches, val_batches = head_batches(features, labels, order, config)
        states = [fit_model(head, folder, "main", config.patience, batches, validation_data=val_batches,
                            epochs=config.epochs, shuffle=False)]  # the batches shuffle themselves
        extra["head_seconds"] = round(time.perf_counter() - head_start, 1)
        save_head(head, folder)
        with strategy.scope():
            model = with_head(extractor, head, config.model)
        if config.fine_tune_epochs:
            with strategy.scope():
                unfreeze_top(extractor, config.fine_tune_layers)
            split = top_blocks.split_at_trainable(extractor) \
                if config.fine_tune_on == "activations" and config.strategy == "none" else None
            if split:
                lower, upper = split
                top = keras.Model(upper.input, head(upper.output), name=f"{config.model}_top_genres")
                top.compile(keras.optimizers.Adam(config.fine_tune_learning_rate),
                            make_loss(config.loss, labels["train"]), metrics=monitored_metrics())
                cache_start = time.perf_counter()
                data, val = top_blocks.activation_data(lower, frames, labels, order, config, paths)
                extra["activation_seconds"] = round(time.perf_counter() - cache_start, 1)
                extra["fine_tuned_from"] = f"{lower.layers[-1].name} {list(lower.output.shape[1:])}"
                fit_start = time.perf_counter()
                states.append(fit_model(top, folder, "finetune", config.patience, data, validation_data=val,
                                        epochs=config.fine_tune_epochs, shuffle=False))
                extra["fine_tune_seconds"] = round(time.perf_counter() - fit_start, 1)
            else:
                with strategy.scope():
                    model.compile(keras.optimizers.Adam(config.fine_tune_learning_rate),
                                  make_loss(config.loss, labels["train"]), metrics=monitored_metrics())
                train_frame = frames["train"].iloc[order]
                data = make_dataset(train_frame, vocabulary, config.input_size, config.batch_size, training=True,
                                    fit=config.fit, cache_dir=_image_cache(paths, config, role),
                                    jpeg_quality=top_blocks.JPEG_QUALITIES if config.jpeg_quality == "random"
                                    else None)
                val = make_dataset(frames["val"], vocabulary, config.input_size, config.batch_size, fit=config.fit)
                states.append(fit_model(model, folder, "finetune", config.patience, data, validation_data=val,
                                        epochs=config.fine_tune_epochs, shuffle=False))  # the dataset shuffles
            val_scores = network_outputs(model, frames["val"], config)
        else:
            val_scores = head(features["val"], training=False).numpy()  # predict() would give a worker its shard
    else:
        with strategy.scope():
            options = {"synchronized_bn": True} if role.distributed and config.model == "custom_cnn" else {}
            model = registry.get(config.model).build(len(vocabulary), config.input_size, **options)
            model.compile(keras.optimizers.Adam(config.learning_rate), make_loss(config.loss, labels["train"]),
                          metrics=monitored_metrics())
        cache = _image_cache(paths, config, role)
        data = make_dataset(frames["train"].iloc[order], vocabulary, config.input_size, config.batch_size,
                            training=True, fit=config.fit, cache_dir=cache)
        val = make_dataset(frames["val"], vocabulary, config.input_size, config.batch_size, fit=config.fit,
                           cache_dir=cache)
        schedule = OneCycle(config.learning_rate, config.epochs, int(data.cardinality())) \
            if config.schedule == "one_cycle" else None
        states = [fit_model(model, folder, "main", config.patience, data, validation_data=val, epochs=config.epochs,
                       shuffle=False, schedule=schedule)]  # the dataset shuffles itself
        val_scores = network_outputs(model, frames["val"], config)

    earlier = sum(state.earlier_seconds for state in states)
    extra["seconds_in_killed_runs"] = round(earlier, 1)
    seconds = time.perf_counter() - start + earlier
    thresholds, val_metrics = calibrated_on_validation(folder, labels["val"], val_scores, config, extra)
    extra["train_posters"] = len(frames["train"])
    if role.chief:
        save_model_folder(folder, model, vocabulary_info(paths, vocabulary, frames["train"]), thresholds, config,
                          paths, seconds, val_metrics, extra)
    for state in states:
        state.finish()
    if role.distributed:
        cluster.barrier(strategy)  # no worker reports done before the chief has written the model folder
    if not role.chief:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{config.name}: validation macro AP {val_metrics['macro_ap']:.3f}, top-3 hit rate "
          f"{val_metrics['top3_hit_rate']:.3f} in {seconds:.0f}s -> {folder}{'' if role.chief else ' (written by worker 0)'}")
    return folder


def calibrated_on_validation(folder: Path, y_val, val_scores, config: TrainConfig, extra: dict):
    """Calibration fitted on the validation outputs (calibration.json, with the confusion rates label-shift
    estimation needs), thresholds tuned on the calibrated ones, and the validation figures."""
    calibrator, calibration_losses = calibrate(y_val, val_scores, config.calibration, config.seed)
    raw_val_scores, val_scores = val_scores, calibrator.apply(val_scores)
    thresholds = metrics.tune_thresholds(y_val, val_scores)
    val_metrics = metrics.headline(y_val, val_scores)
    val_metrics.update(metrics.threshold_metrics(y_val, val_scores, thresholds))
    calibration_report = {"method": calibrator.method, "cv_log_loss": calibration_losses.round(5).to_dict(),
                          **calibration.report(y_val, raw_val_scores, val_scores)}
    write_calibration(folder, calibrator, confusion_rates(y_val, val_scores), calibration_report)
    extra["calibration"] = calibration_report
    return thresholds, val_metrics


def vocabulary_info(paths: Paths, vocabulary: list[str], train: pd.DataFrame) -> dict:
    """genres.json of a model folder: the project's, with the training prior of the posters that may set an
    estimate (a training-only source's genre mix is a choice, not a population)."""
    prior = population(train)[vocabulary].to_numpy(np.float64).mean(axis=0)
    return {**read_json(paths.genres_json), "genres": vocabulary, "train_prior": prior.round(6).tolist()}


def calibrate(y_val, val_scores, method: str, seed: int):
    """The calibration to store: the best by cross-validated log-loss on validation ("auto"), or the one asked for."""
    if method == "auto":
        return calibration.choose(y_val, val_scores, seed=seed)
    if method not in calibration.METHODS:
        raise UserError(f"unknown calibration {method!r}; choose auto or one of {', '.join(calibration.METHODS)}")
    return calibration.fit(y_val, val_scores, method), \
        calibration.cross_validated_log_loss(y_val, val_scores, [method], seed=seed)


def save_model_folder(folder, model, genres_info, thresholds, config, paths, seconds, val_metrics, extra,
                      save=save_network):
    """The network (by default model.keras, model.h5, model.tflite), the small files beside it, the training
    curves (where it trained)."""
    save(model, folder)
    histories = {p.stem: read_history(p) for p in sorted(folder.glob("history*.csv"))}
    if histories:
        training_curves(histories, folder / CURVES_FILE, show=False)  # the notebook shows it, once
    manifest = build_manifest(config, [paths.split_csv(s) for s in SPLITS], paths.root, model=config.model,
                              input_size=list(config.input_size), fit=config.fit,
                              full_model=bool(config.fine_tune_epochs) or not registry.is_pretrained(config.model),
                              training_seconds=round(seconds, 1), validation_metrics=val_metrics, **extra)
    write_model_folder(folder, genres_info, thresholds, manifest)
    write_model_card(folder)
