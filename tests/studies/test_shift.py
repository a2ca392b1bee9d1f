"""The label-shift study's tools (studies/shift.py): a resample reaches the genre mix asked for, and the estimators'
table scores each adapted model."""
import numpy as np

from postergenre.studies import shift
from tests.scoring.test_label_shift import calibrated_collection


def test_resampling_reaches_the_asked_mix():
    rng = np.random.default_rng(0)
    drama = rng.random(20000) < 0.4
    comedy = rng.random(20000) < np.where(drama, 0.2, 0.45)  # correlated genres
    y = np.column_stack([drama, comedy]).astype(int)
    index = shift.resample_to_mix(y, {0: 0.6, 1: 0.25}, seed=1)
    assert np.allclose(y[index].mean(axis=0), [0.6, 0.25], atol=0.015)


def test_compare_estimators_scores_the_log_loss_of_each_adapted_model():
    train_prior = np.array([0.4, 0.2, 0.1])
    y, p = calibrated_collection(np.array([0.6, 0.1, 0.25]), train_prior=train_prior, n=2000, seed=6)
    table = shift.compare_estimators(y, p, train_prior, np.full(3, 0.3), estimators=("cc", "em", "gated"))
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert np.isclose(table.loc["unadapted", "log_loss"], expected)
    assert table.loc["oracle (true mix)", "log_loss"] < table.loc["unadapted", "log_loss"]
    assert "gated" in table.index
