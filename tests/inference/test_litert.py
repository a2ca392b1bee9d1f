"""The TensorFlow-free predictor: model.tflite beside the Keras network, the same probabilities, no TF import."""
import json
import subprocess
import sys

import numpy as np
import pytest

from postergenre.config import REPO_ROOT, UserError
from postergenre.inference.litert import LiteNetwork
from postergenre.modelfolder.layout import LITERT_SOURCES_FILE as SOURCES_FILE, TFLITE_FILE
from postergenre.inference.predictor import load
from postergenre.training.train import TrainConfig, train
from tests.conftest import clone_project, real_posters

DEFAULT = REPO_ROOT / "models" / "default"


@pytest.mark.shared
def test_predict_never_imports_tensorflow_and_gives_what_the_predictor_gives():
    poster = str(real_posters(1)[0])
    script = ("import sys; from postergenre.cli import main; code = main(['predict', '--json', sys.argv[1]]); "
              "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'; "
              "sys.exit(code)")
    lite = subprocess.run([sys.executable, "-c", script, poster], capture_output=True, text=True)
    assert lite.returncode == 0, lite.stderr[-2000:]
    predictor = load(DEFAULT)
    probabilities = predictor.probabilities([poster])[0][0]
    expected = sorted(zip(predictor.genres, probabilities), key=lambda pair: -pair[1])[:3]
    labels = json.loads(lite.stdout)[0]["labels"]
    assert [entry["label"] for entry in labels] == [g for g, _ in expected]
    assert np.allclose([entry["score"] for entry in labels], [p for _, p in expected], atol=1e-4)


@pytest.mark.shared
def test_the_shipped_default_is_lean_and_says_how_to_get_its_whole_network():
    """models/default: 15 MB or less (model.tflite, one member's head for Grad-CAM, the text head); its Keras
    network cannot be built whole, and asking for it says why and what rebuilds it."""
    size = sum(p.stat().st_size for p in DEFAULT.rglob("*") if p.is_file())
    assert size <= 15_000_000, f"models/default is {size / 1e6:.1f} MB"
    manifest = json.loads((DEFAULT / "manifest.json").read_text())
    assert manifest["lean"]["left_out"] and not any((DEFAULT / f).exists() for f in manifest["lean"]["left_out"])
    with pytest.raises(UserError, match="shipped lean.*make default"):
        load(DEFAULT, "keras")
    assert isinstance(load(DEFAULT).network, LiteNetwork), "model.tflite stays current for the files kept"


@pytest.mark.trains
def test_training_exports_and_a_stale_or_broken_file_is_handled(encoded_project, tmp_path, capsys):
    paths = clone_project(encoded_project, tmp_path)
    folder = train(TrainConfig(model="custom_cnn", epochs=1, batch_size=32, input_size=(64, 48), limit=40), paths)
    assert (folder / TFLITE_FILE).exists() and "model.keras" in json.loads((folder / SOURCES_FILE).read_text())
    assert isinstance(load(folder, "litert").network, LiteNetwork)
    # weights that changed after the export: Keras is used this time and the file exported again
    (folder / SOURCES_FILE).write_text(json.dumps({"model.keras": "0" * 64}))
    assert not isinstance(load(folder, "litert").network, LiteNetwork)
    assert isinstance(load(folder, "litert").network, LiteNetwork), "exported again, used next time"
    (folder / TFLITE_FILE).write_bytes(b"not a flatbuffer")
    with pytest.raises(UserError, match=f"{TFLITE_FILE}: cannot load the LiteRT model"):
        load(folder, "litert")
    with pytest.raises(UserError, match="unknown runtime"):
        load(folder, "onnx")


def test_lite_network_takes_any_batch_size():
    copy = LiteNetwork(DEFAULT / TFLITE_FILE)
    images = np.random.default_rng(0).uniform(0, 255, (3, *copy.input_shape[1:])).astype(np.float32)
    together = copy(images)
    one_by_one = np.concatenate([copy(images[i:i + 1]) for i in range(3)])
    assert together.shape == (3, copy.output_shape[-1]) and np.allclose(together, one_by_one, atol=1e-5)


@pytest.mark.shared
@pytest.mark.trains
def test_training_runs_many_posters_through_litert_with_the_keras_outputs(capsys):
    """Features and cached activations of a split run on LiteRT (three to four times Keras's speed here): the same
    numbers as Keras gives, for the pooled features and for the lower blocks cut below the fine-tuned ones."""
    import keras
    import tensorflow as tf

    from postergenre.inference.batches import run_network
    from postergenre.inference.keras_network import KerasNetwork, fast_network
    from postergenre.networks.pretrained import backbone, unfreeze_top
    from postergenre.training.top_blocks import split_at_trainable

    posters, size = [str(p) for p in real_posters(16)], (96, 64)
    extractor = backbone("efficientnet_lite0", size)
    unfreeze_top(extractor, 44)
    lower, _ = split_at_trainable(extractor)
    for network in (extractor, lower):
        with fast_network(network, len(posters)) as few, fast_network(network, len(posters), min_posters=1) as many:
            assert isinstance(few, KerasNetwork) and isinstance(many, LiteNetwork)
            expected, lite = run_network(few, posters, size)[0], run_network(many, posters, size)[0]
        assert lite.shape == expected.shape and np.isfinite(lite).all()
        assert np.abs(lite - expected).max() <= 1e-4 * np.abs(expected).max(), network.name

    inputs = keras.Input((*size, 3))
    refused = keras.Model(inputs, keras.layers.Lambda(
        lambda x: tf.numpy_function(lambda a: a * 2, [x], tf.float32, stateful=False),
        output_shape=(*size, 3))(inputs), name="python_inside")
    with fast_network(refused, 100, min_posters=1) as network:
        assert isinstance(network, KerasNetwork)
    assert "python_inside: runs on Keras, LiteRT cannot take it" in capsys.readouterr().out


def test_the_thread_count_is_one_a_core_unless_set(monkeypatch):
    import os

    from postergenre.inference.litert import THREADS_VARIABLE, thread_count
    monkeypatch.delenv(THREADS_VARIABLE, raising=False)
    assert thread_count() == os.cpu_count()
    monkeypatch.setenv(THREADS_VARIABLE, "1")
    assert thread_count() == 1 and LiteNetwork(DEFAULT / TFLITE_FILE).interpreter is not None
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(THREADS_VARIABLE, bad)
        with pytest.raises(UserError, match=f"{THREADS_VARIABLE}={bad!r}: give a whole number"):
            thread_count()


@pytest.mark.shared
def test_grad_cam_of_several_genres_is_each_genres_own_map():
    """One forward pass serves every genre asked: each map is the one that genre gets alone (a gradient of the
    genres' sum would give every genre the same map)."""
    from postergenre.data.images import load_poster
    predictor = load(DEFAULT)
    poster = load_poster(real_posters(1)[0], predictor.input_size)
    top = list(np.argsort(-predictor.probabilities([poster])[0][0])[:3])
    together = predictor.gradcam(poster, top)
    alone = np.stack([predictor.gradcam(poster, int(genre)) for genre in top])
    assert together.shape == (3, *predictor.input_size) and np.allclose(together, alone, atol=1e-4)
    assert not np.allclose(together[0], together[1], atol=1e-2), "two genres, two maps"
    assert predictor.gradcam_drawn_by == "lite1-q2", "the lean default's heatmaps: its Lite1 member"
