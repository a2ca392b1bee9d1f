"""Per-genre calibration: fitting, choosing by held-out log-loss, storing, applying."""
import json

import numpy as np
import pytest

from postergenre.config import UserError
from postergenre.modelfolder.layout import read_calibration, write_calibration
from postergenre.scoring import calibration
from postergenre.scoring.calibration import Calibration, expected_calibration_error, sigmoid


def miscalibrated(n=4000, genres=3, scale=2.0, bias=-0.7, seed=0):
    """Labels drawn from sigmoid(scale z + bias) while the network says sigmoid(z): overconfident the other way."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (n, genres))
    y = (rng.random((n, genres)) < sigmoid(scale * z + bias)).astype(int)
    return y, sigmoid(z)


def test_platt_recovers_the_distortion_and_removes_the_calibration_error():
    y, scores = miscalibrated()
    fitted = calibration.fit(y, scores, "platt")
    assert np.allclose(fitted.scale, 2.0, atol=0.2) and np.allclose(fitted.bias, -0.7, atol=0.15)
    before, after = expected_calibration_error(y, scores), expected_calibration_error(y, fitted.apply(scores))
    assert before > 0.05 and after < before / 3


def test_temperature_has_no_bias_and_isotonic_is_monotone():
    y, scores = miscalibrated(bias=0.0)
    temperature = calibration.fit(y, scores, "temperature")
    assert temperature.bias == [0.0] * 3 and np.allclose(temperature.scale, 2.0, atol=0.2)
    isotonic = calibration.fit(y, scores, "isotonic")
    grid = np.tile(np.linspace(0, 1, 101)[:, None], (1, 3))
    out = isotonic.apply(grid)
    assert (np.diff(out, axis=0) >= 0).all() and out.min() > 0 and out.max() < 1


def test_choice_is_made_on_held_out_folds():
    y, scores = miscalibrated()
    chosen, losses = calibration.choose(y, scores)
    assert set(losses.index) == set(calibration.METHODS)
    assert chosen.method == losses.idxmin() and chosen.method != "none"
    # already calibrated scores: refitting buys nothing worth its noise
    rng = np.random.default_rng(1)
    p = rng.uniform(0.02, 0.98, (3000, 2))
    y_true = (rng.random(p.shape) < p).astype(int)
    losses = calibration.cross_validated_log_loss(y_true, p)
    assert losses["none"] <= losses["isotonic"] and abs(losses["none"] - losses["platt"]) < 0.002


def test_stored_calibration_applies_the_same_and_checks_its_genres(tmp_path):
    y, scores = miscalibrated()
    for method in calibration.METHODS:
        fitted = calibration.fit(y, scores, method)
        write_calibration(tmp_path, fitted, {"mean_p_positive": [0.5] * 3, "mean_p_negative": [0.1] * 3}, {})
        loaded, confusion = read_calibration(tmp_path, 3)
        assert loaded.method == method and confusion["mean_p_negative"] == [0.1] * 3
        assert np.allclose(loaded.apply(scores), fitted.apply(scores), atol=1e-5)
    with pytest.raises(UserError, match="calibration.json: calibration for 3 genres, the model has 5"):
        read_calibration(tmp_path, 5)
    (tmp_path / "calibration.json").write_text(json.dumps({"calibration": {"method": "magic"}}))
    with pytest.raises(UserError, match="calibration.json: unknown calibration method 'magic'"):
        read_calibration(tmp_path, 3)
    assert read_calibration(tmp_path / "older_model", 3)[0].method == "none", "no file: probabilities as they are"


def test_reliability_table_counts_every_pair():
    y, scores = miscalibrated(n=500)
    table = calibration.reliability_table(y, scores, bins=10)
    assert table["count"].sum() == y.size and table.predicted.between(0, 1).all()
    assert np.array_equal(Calibration().apply(scores), scores), "no calibration: the scores as they are"


def test_reliability_table_and_ece_by_hand():
    # 6 pairs, 2 bins: [0, 0.5) holds 0.1, 0.2, 0.3, 0.4 (two positives), [0.5, 1] holds 0.6, 0.8 (both positive)
    y = np.array([[0, 1, 1], [0, 1, 1]])
    p = np.array([[0.1, 0.2, 0.3], [0.4, 0.6, 0.8]])
    table = calibration.reliability_table(y, p, bins=2)
    assert table["count"].tolist() == [4, 2] and table.bin.tolist() == [0, 1]
    assert table.predicted.tolist() == pytest.approx([0.25, 0.7]) and table.observed.tolist() == pytest.approx([0.5, 1])
    # ECE weighs each bin by its pairs: 4/6 of them off by 0.25, 2/6 by 0.3
    assert calibration.expected_calibration_error(y, p, bins=2) == pytest.approx((4 * 0.25 + 2 * 0.3) / 6)
    assert calibration.expected_calibration_error(y, y.astype(float), bins=2) == 0, "a perfect forecast has none"


@pytest.mark.parametrize("method", ["platt", "temperature"])
def test_a_genre_with_one_validation_positive_keeps_its_ranking(method):
    """A genre with 4 training posters: one validation positive, scored second of 2,712, logits around -10. On 0/1
    targets Newton's method ran off (a real blend's slope 742,732, every probability 0, AP 0.5 -> 0.0004)."""
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(3)
    scores = sigmoid(np.clip(rng.normal(-10, 1.2, (2712, 1)), -13.8, None))
    y = np.zeros((2712, 1), int)
    second = np.argsort(scores[:, 0])[-2]
    y[second] = 1  # the second highest score: AP 0.5
    fitted = calibration.fit(y, scores, method)
    calibrated = fitted.apply(scores)
    assert np.isfinite(fitted.scale[0]) and 0 < fitted.scale[0] < 10
    assert average_precision_score(y[:, 0], calibrated[:, 0]) == pytest.approx(0.5)
    assert len(np.unique(calibrated)) == len(np.unique(scores))  # no ties made
