"""The measurements behind notebook 04's diagnosis of the seeds' network: dead units and output spread."""
import keras
import numpy as np

from postergenre.studies.probe import dead_fraction, diagnose, output_spread


def test_dead_fraction_counts_units_zero_on_every_poster_and_position():
    activations = np.ones((4, 3, 3, 5))
    activations[..., 1] = 0                 # dead everywhere
    activations[:, :, :, 2] = 0
    activations[2, 1, 1, 2] = 0.5           # alive on one poster at one position
    assert dead_fraction(activations) == 0.2
    assert dead_fraction(np.zeros((8, 16))) == 1.0


def test_output_spread_is_zero_at_the_prior_and_grows_with_differences():
    prior = np.tile([0.4, 0.1, 0.05], (50, 1))
    assert output_spread(prior) < 1e-6
    rng = np.random.default_rng(0)
    assert output_spread(rng.uniform(0.01, 0.99, (50, 3))) > 1.0


def test_diagnose_finds_a_layer_killed_by_its_bias():
    inputs = keras.Input((4,))
    alive = keras.layers.Dense(6, activation="relu", name="alive", kernel_initializer="ones")(inputs)
    dead = keras.layers.Dense(6, activation="relu", name="dead", bias_initializer=keras.initializers.Constant(-1e3))(
        alive)
    outputs = keras.layers.Dense(2, activation="sigmoid", name="out")(keras.layers.Concatenate()([alive, dead]))
    model = keras.Model(inputs, outputs)
    figures = diagnose(model, np.random.default_rng(0).uniform(0.1, 1, (16, 4)).astype("float32"), ["alive", "dead"])
    assert figures["dead_alive"] == 0.0 and figures["dead_dead"] == 1.0 and figures["output_spread"] > 0
