"""Quantized networks: each mode converts, runs on LiteRT close to the Keras network, and a shipped quantized model
records how it was made and is evaluated as it ships."""
import json

import numpy as np
import pytest

from postergenre.config import UserError
from postergenre.inference.litert import LiteNetwork
from postergenre.modelfolder.quantize import QUANTIZATIONS, quantized_tflite


@pytest.fixture(scope="module")
def tiny():
    import keras
    from keras import layers
    inputs = keras.Input((48, 32, 3))
    x = layers.Rescaling(1 / 255)(inputs)
    x = layers.Conv2D(16, 3, activation="relu")(x)
    x = layers.Conv2D(32, 3, strides=2, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Dense(5, activation="sigmoid")(x))
    images = np.random.default_rng(0).uniform(0, 255, (40, 48, 32, 3)).astype(np.float32)
    return model, images


def test_each_quantization_runs_on_litert_close_to_keras_and_smaller(tiny, tmp_path):
    model, images = tiny
    expected = model(images, training=False).numpy()
    sizes = {}
    for mode in QUANTIZATIONS:
        data = quantized_tflite(model, mode, images[:20] if mode == "int8" else None)
        path = tmp_path / f"{mode}.tflite"
        path.write_bytes(data)
        sizes[mode] = len(data)
        got = LiteNetwork(path, threads=1)(images)
        assert got.shape == expected.shape and np.abs(got - expected).max() < (1e-5 if mode == "none" else 0.05), mode
    assert sizes["float16"] < sizes["none"] and sizes["int8"] < sizes["float16"], sizes
    with pytest.raises(UserError, match="int8 quantization needs representative posters"):
        quantized_tflite(model, "int8")
    with pytest.raises(UserError, match="unknown quantization"):
        quantized_tflite(model, "int4")


@pytest.mark.trains
def test_a_model_ships_quantized_and_is_evaluated_as_it_ships(trained_project, tmp_path):
    from postergenre.app.rebuild import ship_model
    from postergenre.modelfolder.card import CARD_FILE
    target = ship_model(trained_project.models / "efficientnet_lite0", tmp_path / "shipped", trained_project, "int8",
                        n_boot=20)
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["quantization"]["mode"] == "int8" and manifest["quantization"]["representative_posters"] > 0
    evaluated = json.loads((target / "eval_test.json").read_text())
    assert manifest["test_metrics"] == evaluated["metrics"], "the figures are the quantized network's own"
    assert "is quantized (int8" in (target / CARD_FILE).read_text()
