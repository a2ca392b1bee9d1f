"""Training: model folders, the feature cache, resume after a kill, strategies, clear errors."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from postergenre.config import UserError
from postergenre.modelfolder.card import model_card
from postergenre.inference.predictor import load
from postergenre.training.train import TrainConfig, read_history, split_tables, train
from tests.conftest import clone_project

FOLDER_FILES = {"model.keras", "model.h5", "genres.json", "thresholds.json", "calibration.json", "history.csv",
                "curves.png", "manifest.json", "README.md"}


@pytest.mark.trains
def test_custom_cnn_writes_a_complete_model_folder(encoded_project, tmp_path):
    paths = clone_project(encoded_project, tmp_path)
    folder = train(TrainConfig(model="custom_cnn", epochs=2, batch_size=32, input_size=(128, 96)), paths)
    assert FOLDER_FILES <= {p.name for p in folder.iterdir()}
    assert not any(p.name.startswith(("backup", "best")) for p in folder.iterdir())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["config"]["model"] == "custom_cnn" and manifest["seed"] == 42
    assert (folder / "README.md").read_text() == model_card(folder) and "Not evaluated on the test split yet" in \
        model_card(folder), "training writes the model card from the folder's files"
    assert len(manifest["data_hash"]) == 16 and manifest["versions"]["keras"].startswith("3.")
    assert manifest["data_files"] == [f"data/processed/{s}.csv" for s in ("train", "val", "test")]
    assert 0 < manifest["validation_metrics"]["macro_ap"] <= 1 and manifest["training_seconds"] > 0
    assert read_history(folder / "history.csv").epoch.tolist() == [0, 1]
    trained = load(folder)
    images = np.random.default_rng(0).uniform(0, 255, (3, 128, 96, 3)).astype("float32")
    scores = trained.keras_model().predict(images, verbose=0)
    assert scores.shape == (3, len(trained.genres)) and ((scores >= 0) & (scores <= 1)).all()


@pytest.mark.trains
def test_pretrained_head_trains_on_cached_features_and_the_imbalance_options_reuse_them(encoded_project, tmp_path):
    from postergenre.studies.experiments import compare_imbalance
    paths = clone_project(encoded_project, tmp_path)
    folder = train(TrainConfig(model="efficientnet_lite0", epochs=3, input_size=(112, 76)), paths)
    cached = sorted((paths.cache / "features").glob("*.npy"))
    assert len(cached) == 2 and FOLDER_FILES | {"head.keras"} <= {p.name for p in folder.iterdir()}
    n_train = len(pd.read_csv(paths.split_csv("train")))
    assert np.load(cached[0]).shape[1] == 1280 and n_train in {np.load(p).shape[0] for p in cached}
    trained = load(folder)
    assert trained.network.input_shape == (None, 112, 76, 3)
    assert not trained.manifest["full_model"]

    stamps = [p.stat().st_mtime_ns for p in cached]
    variants = {"bce": {}, "focal": {"loss": "focal"}, "oversample": {"oversample": True}}
    table = compare_imbalance(paths, variants=variants, epochs=2, input_size=(112, 76))
    assert [p.stat().st_mtime_ns for p in cached] == stamps, "the second run must read the cache"
    assert sorted((paths.cache / "features").glob("*.npy")) == cached, "features computed once for all options"
    assert set(table.variant) == set(variants) and table.macro_ap.is_monotonic_decreasing
    assert table[["macro_ap", "micro_f1", "top3_hit_rate"]].gt(0).all().all() and (table.epochs <= 2).all()
    assert [p.name for p in paths.models.iterdir()] == [folder.name], "no model folder per option"
    with pytest.raises(UserError, match="not a pretrained model"):
        compare_imbalance(paths, model="custom_cnn")


@pytest.mark.trains
def test_a_head_can_learn_from_posters_re_saved_at_random_jpeg_qualities(encoded_project, tmp_path):
    from postergenre.training import top_blocks
    paths = clone_project(encoded_project, tmp_path)
    config = TrainConfig(model="efficientnet_lite0", epochs=2, input_size=(112, 76), limit=48, feature_variants=2)
    folder = train(config, paths)
    cached = sorted((paths.cache / "activations").glob("*.npy"))
    assert len(cached) == 2, "one file of features per variant of the training posters"
    first, second = (np.load(f) for f in cached)
    assert first.shape == second.shape == (48, 1280) and not np.allclose(first, second, atol=1e-3)
    stored = list((paths.cache / "features").glob("*.npy"))
    validation = split_tables(paths, 48)[0]["val"]
    assert len(stored) == 1 and np.load(stored[0]).shape[0] == len(validation), "validation: the posters as stored"
    plan = top_blocks.variant_plan(48, 2, True, config.seed)
    assert all((q >= 30).all() and (q <= 90).all() for q, _ in plan) and [m for _, m in plan] == [False, True]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["config"]["feature_variants"] == 2 and manifest["full_model"] is False
    genres = json.loads((folder / "genres.json").read_text())["genres"]
    assert load(folder).network.output_shape[-1] == len(genres), "it predicts from images like any head"
    with pytest.raises(UserError, match=r"feature-variants: -1 is out of range \(from 0 to 16\)"):
        TrainConfig(feature_variants=-1)
    with pytest.raises(UserError, match="photo-variants: 2 is more than feature-variants"):
        TrainConfig(feature_variants=1, photo_variants=2)


@pytest.mark.slow
@pytest.mark.trains
def test_fine_tuning_phase_two(encoded_project, tmp_path, fine_tune_on="activations"):
    from postergenre.networks.pretrained import backbone
    paths = clone_project(encoded_project, tmp_path)
    folder = train(TrainConfig(model="efficientnet_lite0", epochs=1, fine_tune_epochs=1, fine_tune_layers=6,
                               input_size=(112, 76), batch_size=32, limit=64, fine_tune_on=fine_tune_on), paths)
    assert (folder / "history_finetune.csv").exists()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["full_model"] is True
    cached = sorted((paths.cache / "activations").glob("*.npy")) if (paths.cache / "activations").exists() else []
    assert len(cached) == 3 and "block14_add" in manifest["fine_tuned_from"], "2 training variants and val"
    trained = load(folder)
    assert trained.keras_model().count_params() > 3_000_000
    imagenet = backbone("efficientnet_lite0", (112, 76))
    for layer, learns in (("block15_project_conv", True), ("block14_project_conv", False)):
        same = np.array_equal(trained.keras_model().get_layer(layer).get_weights()[0],
                              imagenet.get_layer(layer).get_weights()[0])
        assert same != learns, f"{layer} {'changed' if learns else 'frozen'} in the shipped network"
    # a fine-tuned model ships as weights only (no optimizer state), its layers rebuilt by code
    from postergenre.evaluation.evaluate import evaluate
    from postergenre.modelfolder.layout import FINE_TUNED_WEIGHTS
    from postergenre.modelfolder.ship import ship
    result = evaluate(folder, paths=paths, n_boot=10, figures=False, progress=False)
    target = ship(folder, tmp_path / "shipped", result, paths.root)
    weight_bytes = 4 * trained.keras_model().count_params()  # float32, no optimizer state (Adam's would double it)
    assert (target / FINE_TUNED_WEIGHTS).stat().st_size < 1.2 * weight_bytes
    images = np.random.default_rng(0).uniform(0, 255, (2, 112, 76, 3)).astype("float32")
    shipped = load(target)
    assert np.allclose(shipped.keras_model().predict(images, verbose=0), trained.keras_model().predict(images, verbose=0),
                       atol=1e-5)
    assert shipped.calibration.method == trained.calibration.method


@pytest.mark.slow
@pytest.mark.trains
def test_mirrored_strategy_on_cpu_trains_as_no_strategy_does(encoded_project, tmp_path):
    """One batch an epoch: with several, the two differ (by up to 0.02 after 3 epochs of the 300-poster head)."""
    from postergenre.modelfolder.network import load_network
    paths = clone_project(encoded_project, tmp_path)  # one project: both heads train on the same cached features
    weights = {}
    for strategy in ("none", "mirrored"):
        folder = train(TrainConfig(model="efficientnet_lite0", name=strategy, epochs=2, strategy=strategy,
                                   input_size=(64, 44), limit=64), paths)
        assert json.loads((folder / "manifest.json").read_text())["config"]["strategy"] == strategy
        assert len(read_history(folder / "history.csv")) == 2
        weights[strategy] = load_network(folder / "head.keras").get_weights()
    assert all(np.allclose(a, b, rtol=0, atol=1e-6) for a, b in zip(weights["none"], weights["mirrored"])), \
        "one CPU replica under MirroredStrategy takes the same steps as no strategy"


def _cli(root, *args):
    return [sys.executable, "-m", "postergenre.cli", "--root", str(root), "train", *args]


@pytest.mark.slow
@pytest.mark.trains
@pytest.mark.xdist_group("processes")
def test_killed_training_resumes_where_it_stopped(encoded_project, tmp_path):
    paths = clone_project(encoded_project, tmp_path)
    cmd = _cli(paths.root, "--model", "custom_cnn", "--epochs", "6", "--patience", "10", "--input-size", "64x44",
               "--limit", "96")
    history = paths.models / "custom_cnn" / "history.csv"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and (not history.exists() or len(history.read_text().splitlines()) < 3):
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = read_history(history).epoch.tolist()
    assert 2 <= len(done) < 6, "the kill must land mid-training"
    assert (paths.models / "custom_cnn" / "backup_main").exists()
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resuming at epoch" in result.stdout
    assert f"Epoch {len(done) + 1}/6" in result.stdout or f"Epoch {len(done)}/6" in result.stdout
    assert "Epoch 1/6" not in result.stdout, "a resumed run must not start over"
    assert read_history(history).epoch.tolist() == list(range(6))
    manifest = json.loads((paths.models / "custom_cnn" / "manifest.json").read_text())
    assert 0 < manifest["seconds_in_killed_runs"] < manifest["training_seconds"]


@pytest.mark.trains
def test_corrupt_backup_is_named_on_resume(encoded_project, tmp_path):
    paths = clone_project(encoded_project, tmp_path)
    backup = paths.models / "custom_cnn" / "backup_main"
    backup.mkdir(parents=True)
    (backup / "state.json").write_text(json.dumps({"epoch": 1, "latest": "epoch_0001.weights.h5", "best": 0.5,
                                                   "best_file": "epoch_0001.weights.h5", "seconds": 1.0,
                                                   "finished": False, "callbacks": [{}, {}]}))
    (backup / "epoch_0001.weights.h5").write_bytes(b"this is not an HDF5 file")
    result = subprocess.run(_cli(paths.root, "--model", "custom_cnn", "--epochs", "2", "--input-size", "128x96"),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
    assert str(backup) in last and "cannot resume" in last and "delete it to start over" in last


@pytest.mark.trains
def test_bad_training_input_is_one_clear_line(encoded_project, tmp_path):
    with pytest.raises(UserError, match="unknown model 'resnet9000'"):
        TrainConfig(model="resnet9000")
    paths = clone_project(encoded_project, tmp_path)
    paths.split_csv("val").unlink()
    with pytest.raises(UserError, match=r"val.csv: file not found \(run `postergenre encode` first\)"):
        train(TrainConfig(model="custom_cnn", epochs=1), paths)
    with pytest.raises(UserError, match="model folder not found"):
        load(tmp_path / "no_model")


def test_corrupt_model_file_is_named(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"model": "custom_cnn", "input_size": [200, 150]}))
    (folder / "genres.json").write_text(json.dumps({"genres": ["Drama"], "train_prior": [0.4]}))
    (folder / "model.keras").write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(UserError, match=r"broken/model.keras: cannot load model"):
        load(folder)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(UserError, match=r"broken/manifest.json: not valid JSON"):
        load(folder)


@pytest.mark.trains
def test_custom_cnn_repeats_for_a_seed(encoded_project, tmp_path):
    """Same seed, same data: the same weights, epoch by epoch (stateless, per-poster augmentation seeds)."""
    weights = []
    for run in ("first", "second"):
        paths = clone_project(encoded_project, tmp_path / run)
        folder = train(TrainConfig(model="custom_cnn", epochs=2, batch_size=32, input_size=(64, 44)), paths)
        weights.append(load(folder).keras_model().get_weights())
        history = read_history(folder / "history.csv")
    assert all(np.array_equal(a, b) for a, b in zip(*weights))
    assert len(history) == 2


def test_one_cycle_warms_up_then_decays_to_zero():
    from postergenre.training.train import OneCycle
    schedule = OneCycle(peak=3e-3, epochs=5, steps_per_epoch=10)
    rates = [schedule.rate(step) for step in range(50)]
    assert rates[0] == pytest.approx(3e-4) and rates[9] == pytest.approx(3e-3) and max(rates) == pytest.approx(3e-3)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:])) and rates[-1] < 1e-5


@pytest.mark.trains
def test_a_model_folder_is_loaded_once_until_its_files_change(trained_project, tmp_path, monkeypatch):
    import shutil

    from postergenre.data.encode import load_splits
    from postergenre.inference import predictor
    folder = Path(shutil.copytree(trained_project.models / "efficientnet_lite0", tmp_path / "model"))
    trained = load(folder)
    assert load(folder) is trained
    frame = load_splits(trained_project)[0]["test"].head(20)
    calls = []
    real = predictor.run_network
    monkeypatch.setattr(predictor, "run_network", lambda *a, **k: calls.append(1) or real(*a, **k))
    first, _ = trained.network_outputs(frame.poster_path)
    first[:] = -1  # the caller's copy: the kept outputs are not touched
    again, errors = trained.network_outputs(frame.poster_path)
    assert len(calls) == 1 and again.shape == (20, len(trained.genres)) and (again >= 0).all() and not any(errors)
    trained.network_outputs(frame.poster_path.head(10))
    assert len(calls) == 2, "another list of posters is predicted"
    twin = load(folder, text=False)  # the same network loaded another way, as the label-shift study loads it
    assert twin is not trained
    np.testing.assert_array_equal(twin.network_outputs(frame.poster_path)[0], again)
    assert len(calls) == 2, "the same folder's network is not run again for the same posters"
    thresholds = json.loads((folder / "thresholds.json").read_text())
    time.sleep(0.01)
    (folder / "thresholds.json").write_text(json.dumps({g: 0.3 for g in thresholds}))
    reloaded = load(folder)
    assert reloaded is not trained and np.allclose(reloaded.thresholds, 0.3)
