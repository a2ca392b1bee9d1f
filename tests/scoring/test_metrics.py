"""Metrics against cases computed by hand, including the seeds' three definitions."""
import numpy as np
import pandas as pd
import pytest

from postergenre.evaluation.evaluate import bootstrap, map_labels, table
from postergenre.scoring import metrics

Y = np.array([[1, 0, 0, 1],
              [0, 1, 0, 0],
              [0, 0, 1, 1]])
S = np.array([[0.9, 0.1, 0.3, 0.2],
              [0.8, 0.7, 0.1, 0.0],
              [0.1, 0.2, 0.3, 0.4]])
# top 3 by row: row0 -> genres 0, 2, 3 (hits 1, 0, 1); row1 -> 0, 1, 2 (0, 1, 0); row2 -> 3, 2, 1 (1, 1, 0)


def test_seed_000_top3_hit_rate():
    assert metrics.top_k_hit_rate(Y, S, 3) == 1.0
    assert metrics.top_k_hit_rate(Y, S, 1) == pytest.approx(2 / 3)  # row1's top genre (0) is wrong


def test_seed_002_top3_count():
    assert metrics.top_k_count(Y, S, 3) == pytest.approx((2 + 1 + 2) / 3)


def test_seed_001_top_n_accuracy():
    # row0: n=2, top 2 = {0, 2}, 1 of 2; row1: n=1, top 1 = {0}, 0 of 1; row2: n=2, top 2 = {3, 2}, 2 of 2
    assert metrics.top_n_accuracy(Y, S) == pytest.approx((0.5 + 0 + 1) / 3)


@pytest.mark.parametrize("seed", [0, 1])
def test_top_n_accuracy_counts_each_posters_own_top_n(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random((200, 8)) < 0.25).astype(int)  # some posters have no genre: left out
    s = np.round(rng.random((200, 8)), 1)  # ties: the first genre of equal scores ranks first
    rows = [(y[i][np.argsort(-s[i], kind="stable")[:n]].sum() / n) for i, n in enumerate(y.sum(axis=1)) if n]
    assert (y.sum(axis=1) == 0).any() and metrics.top_n_accuracy(y, s) == pytest.approx(np.mean(rows))


def test_precision_at_k():
    assert metrics.precision_at_k(Y, S, 1) == pytest.approx(2 / 3)
    assert metrics.precision_at_k(Y, S, 2) == pytest.approx(4 / 6)


def test_average_precision_by_hand():
    # genre 0, 1, 3: the positives rank first, AP 1; genre 2: its positive ties with a negative at 0.3, AP 0.5
    assert metrics.per_genre_ap(Y, S).tolist() == [1.0, 1.0, 0.5, 1.0]
    assert metrics.average_precision(Y, S, "macro") == pytest.approx(0.875)
    weights = Y.sum(axis=0) / Y.sum()
    assert metrics.average_precision(Y, S, "weighted") == pytest.approx(float(weights @ [1, 1, 0.5, 1]))


def test_micro_average_precision_by_hand():
    y = np.array([[1, 0], [0, 1]])
    s = np.array([[0.9, 0.8], [0.2, 0.7]])
    # pooled: 0.9 (pos), 0.8 (neg), 0.7 (pos), 0.2 (neg): AP = 1/2 * 1 + 1/2 * 2/3
    assert metrics.average_precision(y, s, "micro") == pytest.approx(0.5 + 1 / 3)


def test_genres_without_positives_are_left_out_of_macro_ap():
    y = np.array([[1, 0, 0], [0, 1, 0]])
    s = np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.5]])
    assert metrics.present_genres(y).tolist() == [True, True, False]
    assert metrics.average_precision(y, s) == 1.0
    assert np.isnan(metrics.per_genre_ap(y, s)[2])


def test_threshold_metrics_by_hand():
    # at 0.5: predicted row0 {0}, row1 {0, 1}, row2 {}: TP 2, FP 1, FN 3
    result = metrics.threshold_metrics(Y, S, 0.5)
    assert result["micro_f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 3))
    assert result["hamming_loss"] == pytest.approx(4 / 12)
    # per genre: F1 = 2/3, 1, 0, 0 -> macro 5/12; samples: row0 2/3, row1 2/3, row2 0
    assert result["macro_f1"] == pytest.approx((2 / 3 + 1 + 0 + 0) / 4)
    assert result["samples_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    tuned = metrics.threshold_metrics(Y, S, [0.5, 0.5, 0.25, 0.15])
    assert tuned["micro_f1"] > result["micro_f1"]


def test_macro_f1_averages_only_the_genres_present():
    # genre 2 has no poster here: predicting it or not, it is left out of the average (not counted as F1 0)
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    s = np.array([[0.9, 0.1, 0.6], [0.2, 0.8, 0.1], [0.7, 0.3, 0.1]])
    # genre 0: TP 2 -> F1 1; genre 1: TP 1, FN 1 -> F1 2/3; genre 2 absent
    for compute in (metrics.threshold_metrics, metrics.fast_threshold_metrics):
        assert compute(y, s, 0.5)["macro_f1"] == pytest.approx((1 + 2 / 3) / 2)
    assert metrics.genres_averaged(y, ["A", "B", "C"]) == {"count": 2, "of": 3, "absent": ["C"]}


def test_tuned_thresholds_maximise_f1():
    y = np.array([[1], [1], [0], [0]])
    s = np.array([[0.35], [0.3], [0.2], [0.1]])
    threshold = metrics.tune_thresholds(y, s)[0]
    assert 0.2 < threshold <= 0.3


def test_constant_baselines():
    train = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 0, 0]])
    top2 = metrics.constant_scores(train, 2, k=2)
    assert top2.tolist() == [[1, 1, 0, 0], [1, 1, 0, 0]]
    assert metrics.constant_scores(train, 1, k=None)[0].tolist() == pytest.approx([1, 2 / 3, 1 / 3, 0])


def test_bootstrap_interval_brackets_the_point_and_shrinks_with_data():
    rng = np.random.default_rng(0)
    y = (rng.random((400, 5)) < 0.3).astype(int)
    s = np.clip(y * 0.3 + rng.random((400, 5)) * 0.7, 0, 1)
    wide = bootstrap(y[:100], {"m": s[:100]}, {"m": np.full(5, 0.5)}, n_boot=100)["m"]["macro_ap"]
    narrow = bootstrap(y, {"m": s}, {"m": np.full(5, 0.5)}, n_boot=100)["m"]["macro_ap"]
    assert wide[1] <= wide[0] <= wide[2] and narrow[1] <= narrow[0] <= narrow[2]
    assert narrow[2] - narrow[1] < wide[2] - wide[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bootstrap_interval_is_centred_on_the_full_set_value_for_a_model_without_signal(seed):
    # Random scores on rare genres: resampled AP reads about one standard error high (a poster drawn
    # twice ties with itself), so a plain percentile interval sits almost wholly above the full-set value.
    rng = np.random.default_rng(seed)
    y = (rng.random((1000, 12)) < np.geomspace(0.01, 0.45, 12)).astype(np.int8)
    s = rng.random((1000, 12))
    value, low, high = bootstrap(y, {"m": s}, {"m": np.full(12, 0.5)}, n_boot=100, seed=seed)["m"]["macro_ap"]
    half_width = (high - low) / 2
    assert abs((low + high) / 2 - value) < 0.25 * half_width


def test_foreign_genres_are_mapped_listed_and_left_out():
    vocabulary = {"genres": ["Drama", "Music", "Sci-Fi"],
                  "rules": {"drop": ["TV Movie"], "merge": {"Musical": "Music"},
                            "synonyms": {"Science Fiction": "Sci-Fi"}, "min_count": 1, "other": "Other"}}
    frame = pd.DataFrame({"poster_path": ["a", "b", "c", "d"],
                          "genres": ["science fiction|Western", "Musical|drama", "Western|TV Movie", "Sci-Fi"]})
    kept, labels, info = map_labels(frame, vocabulary)
    assert kept.poster_path.tolist() == ["a", "b", "d"]
    assert labels.tolist() == [[0, 0, 1], [1, 1, 0], [0, 0, 1]]
    assert info == {"posters": 4, "posters_without_known_genres": 1, "unknown_genres": {"Western": 2}}


def test_comparison_table_puts_baselines_last():
    result = {"metrics": {"baseline: x": {m: [0.1, 0.0, 0.2] for m in ("macro_ap", "micro_ap")},
                          "model": {m: [0.5, 0.4, 0.6] for m in ("macro_ap", "micro_ap")}}}
    shown = table([result], columns=("macro_ap", "micro_ap"))
    assert shown.index.tolist() == ["model", "baseline: x"]
    assert shown.loc["model", "macro_ap"] == "0.500 [0.400, 0.600]"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_twins_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random((300, 6)) < [0.4, 0.2, 0.1, 0.05, 0.3, 0.0]).astype(int)
    s = np.round(np.clip(y * 0.25 + rng.random((300, 6)), 0, 1), 2)  # rounding makes ties
    together = metrics.fast_average_precisions(y, s)
    for average in ("macro", "micro", "weighted"):
        assert metrics.fast_average_precision(y, s, average) == pytest.approx(metrics.average_precision(y, s, average))
        assert together[average] == pytest.approx(metrics.average_precision(y, s, average))
    assert np.allclose(metrics.fast_per_genre_ap(y, s), metrics.per_genre_ap(y, s), equal_nan=True)
    thresholds = rng.uniform(0.2, 0.8, 6)
    fast, reference = metrics.fast_threshold_metrics(y, s, thresholds), metrics.threshold_metrics(y, s, thresholds)
    assert fast == pytest.approx(reference)


@pytest.mark.parametrize("seed", [0, 1])
def test_tuned_thresholds_are_scikit_learns_f1_argmax(seed):
    from sklearn.metrics import f1_score
    rng = np.random.default_rng(seed)
    y = (rng.random((300, 6)) < [0.5, 0.2, 0.05, 0.01, 0.3, 0.0]).astype(int)
    s = np.clip(0.3 * y + rng.random((300, 6)) * 0.8, 0, 1).astype(np.float32)
    grid = np.linspace(0.02, 0.9, 45)
    expected = [grid[int(np.argmax([f1_score(y[:, j], s[:, j] >= t, zero_division=0) for t in grid]))]
                if y[:, j].any() else 0.5 for j in range(6)]
    assert np.array_equal(metrics.tune_thresholds(y, s, grid), expected)
