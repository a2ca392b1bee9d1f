"""Label-shift adaptation on synthetic data where the truth is known."""
import numpy as np
import pytest

from postergenre.config import UserError
from postergenre.scoring import label_shift
from postergenre.scoring.label_shift import adapt, estimate_prior, reweight


def calibrated_collection(prior, n=6000, train_prior=None, separation=1.5, seed=0):
    """Labels with share `prior` per genre; scores are exact posteriors under `train_prior` (calibrated there)."""
    rng = np.random.default_rng(seed)
    prior = np.asarray(prior, dtype=float)
    train_prior = prior if train_prior is None else np.asarray(train_prior, dtype=float)
    y = (rng.random((n, len(prior))) < prior).astype(int)
    x = rng.normal(np.where(y == 1, separation / 2, -separation / 2), 1.0)
    likelihood_ratio = np.exp(separation * x)  # N(+s/2, 1) over N(-s/2, 1)
    odds = likelihood_ratio * train_prior / (1 - train_prior)
    return y, odds / (1 + odds)


def test_bayes_rule_per_genre():
    p = np.array([[0.2, 0.5, 0.9]])
    assert np.allclose(reweight(p, [0.3, 0.3, 0.3], [0.3, 0.3, 0.3]), p)
    assert np.isclose(reweight(np.array([[0.5]]), [0.5], [0.8])[0, 0], 0.8)
    moved = reweight(np.linspace(0.01, 0.99, 50)[:, None], [0.2], [0.6])[:, 0]
    assert (np.diff(moved) > 0).all() and (moved >= np.linspace(0.01, 0.99, 50)).all()


def test_estimators_under_pure_label_shift():
    train_prior, true_prior = np.array([0.4, 0.2, 0.1]), np.array([0.6, 0.1, 0.25])
    y_source, p_source = calibrated_collection(train_prior, seed=1)
    confusion = label_shift.confusion_rates(y_source, p_source)
    y, p = calibrated_collection(true_prior, train_prior=train_prior, seed=2)
    observed = y.mean(axis=0)
    em = estimate_prior(p, train_prior, "em")
    assert np.abs(em - observed).max() < 0.03, "maximum likelihood is consistent under pure label shift"
    assert np.abs(estimate_prior(p, train_prior, "bbse", confusion) - observed).max() < 0.03
    cc = estimate_prior(p, train_prior, "cc")
    # classify-and-count moves toward the truth but not all the way; shrunk EM lies between
    assert ((cc - train_prior) * (observed - train_prior) > 0).all()
    assert (np.abs(cc - observed) > np.abs(em - observed)).all()
    shrunk = estimate_prior(p, train_prior, "em_shrunk")
    assert (np.abs(shrunk - observed) <= np.abs(cc - observed) + 0.02).all()
    adapted = reweight(p, train_prior, em)
    assert np.abs(adapted.mean(axis=0) - observed).max() < 0.03, "adapted probabilities are calibrated again"


def test_small_collections_keep_the_training_mix_and_a_given_mix_is_used():
    train_prior = np.array([0.4, 0.2])
    _, p = calibrated_collection([0.7, 0.1], n=30, train_prior=train_prior)
    adapted, mix, source, note = adapt(p, train_prior)
    assert np.array_equal(adapted, p) and np.array_equal(mix, train_prior) and source == "training mix"
    assert "only 30 posters" in note and "training mix" in note
    adapted, mix, source, note = adapt(p, train_prior, prior=[0.7, 0.1])
    assert note == "genre mix given by the user" and source == "given mix" and np.allclose(mix, [0.7, 0.1])
    assert (adapted[:, 0] > p[:, 0]).all() and (adapted[:, 1] < p[:, 1]).all()


def test_user_mix_file_errors_name_file_and_row(tmp_path):
    genres = ["Drama", "Comedy"]
    good = tmp_path / "mix.csv"
    good.write_text("genre,share\ndrama,0.7\nComedy,0.2\n")
    assert np.allclose(label_shift.read_prior(good, genres), [0.7, 0.2])
    cases = {"genre,share\nDrama,1.7\nComedy,0.2\n": r"bad.csv, row 2: share of 'Drama' must be a number in 0..1",
             "genre,share\nDrama,0.5\nWestern,0.2\n": r"bad.csv: genres the model does not know: western",
             "genre,share\nDrama,0.5\n": r"bad.csv: no share for Comedy",
             "name,value\nDrama,0.5\n": r"bad.csv: expected columns genre,share"}
    for text, message in cases.items():
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(UserError, match=message):
            label_shift.read_prior(bad, genres)


def test_gated_keeps_the_training_mix_where_nothing_moved():
    """No shift: no genre's mean probability lies 3 standard errors from its training share, so the gated mix is
    the training mix and the adapted probabilities are the model's own; EM moves every genre a little."""
    train_prior = np.array([0.45, 0.3, 0.15, 0.08, 0.03])
    y, p = calibrated_collection(train_prior, n=800, seed=3)
    gated = estimate_prior(p, train_prior, "gated")
    assert np.array_equal(gated, np.clip(train_prior, *label_shift.BOUNDS))
    assert np.allclose(reweight(p, train_prior, gated), p)
    assert np.abs(estimate_prior(p, train_prior, "em") - train_prior).max() > 0.003


def test_gated_adapts_only_the_genre_that_moved_and_as_far_as_cc():
    train_prior = np.array([0.4, 0.2, 0.1])
    true_prior = np.array([0.7, 0.2, 0.1])  # only the first genre's share moved, and far
    y, p = calibrated_collection(true_prior, train_prior=train_prior, n=3000, seed=4)
    evidence = label_shift.shift_evidence(p, train_prior)
    assert evidence["z"][0] > 10 and evidence["kept"][0] > 0.95
    gated, cc = estimate_prior(p, train_prior, "gated"), estimate_prior(p, train_prior, "cc")
    assert abs(gated[0] - cc[0]) < 0.005 and abs(gated[0] - train_prior[0]) > 0.1
    unmoved = evidence["kept"][1:] == 0
    assert np.allclose(gated[1:][unmoved], train_prior[1:][unmoved])


def test_the_validation_split_s_own_error_widens_the_gate():
    """The same collection, its mean probability compared with a reference measured on few or many posters."""
    train_prior = np.array([0.3])
    p = np.clip(np.random.default_rng(8).normal(0.33, 0.2, size=(2000, 1)), 0.001, 0.999)
    alone = label_shift.shift_evidence(p, train_prior)
    against_small = label_shift.shift_evidence(p, train_prior, reference_posters=300)
    assert abs(alone["z"][0]) > abs(against_small["z"][0]) * 2
    assert alone["kept"][0] > 0 and against_small["kept"][0] == 0


def test_the_gate_shrinks_a_move_by_the_strength_of_its_evidence():
    train_prior = np.array([0.3])
    rng = np.random.default_rng(5)
    kept = []
    for shift in (0.0, 0.02, 0.04, 0.08):  # the same spread of probabilities around a mean further and further away
        p = np.clip(rng.normal(0.3 + shift, 0.2, size=(1000, 1)), 0.001, 0.999)
        kept.append(label_shift.shift_evidence(p, train_prior)["kept"][0])
    assert kept[0] == 0 and kept == sorted(kept) and 0 < kept[2] < kept[3] <= 1


def test_the_gated_mix_table_gives_each_genre_its_interval_and_whether_it_was_adapted():
    train_prior = np.array([0.4, 0.2, 0.1])
    y, p = calibrated_collection(np.array([0.7, 0.2, 0.1]), train_prior=train_prior, n=3000, seed=4)
    adaptation = label_shift.adapt_to_collection(p, ["Drama", "Comedy", "War"], train_prior, np.full(3, 0.5),
                                                 estimator="gated")
    table = adaptation.mix_table().set_index("genre")
    assert table.loc["Drama", "adapted"] == "yes"
    for genre, row in table.iterrows():  # adapted exactly where the training share lies outside the gate's interval
        low, high = (float(v) for v in row["mean p [±3 s.e.]"].split("[")[1].rstrip("]").split(","))
        assert low <= p[:, ["Drama", "Comedy", "War"].index(genre)].mean() <= high
        assert (row.adapted == "yes") == (not low <= row["training mix"] <= high), genre
    assert set(table.adapted) == {"yes", "no"} or (adaptation.evidence["kept"] > 0).all()
    assert "genres moved clearly" in adaptation.note


def test_the_targets_are_read_set_by_set_from_the_study_tables():
    import pandas as pd
    from postergenre.studies.experiments import adaptation_targets

    def table(unadapted, gated, oracle):
        return pd.DataFrame({name: dict(zip(("top3_hit_rate", "micro_f1@tuned", "log_loss"), values))
                             for name, values in (("unadapted", unadapted), ("gated", gated),
                                                  ("oracle (true mix)", oracle))}).T
    tables = {"no shift: test": table((0.90, 0.50, 0.20), (0.901, 0.499, 0.20), (0.90, 0.50, 0.20)),
              "known shift: test resampled": table((0.80, 0.40, 0.30), (0.85, 0.45, 0.22), (0.86, 0.46, 0.20)),
              "known shift: another": table((0.80, 0.40, 0.30), (0.81, 0.41, 0.29), (0.86, 0.46, 0.20)),
              "outside: greatest_films": table((0.88, 0.44, 0.25), (0.879, 0.45, 0.24), (0.9, 0.5, 0.2))}
    targets = adaptation_targets(tables, "gated")
    assert targets.met.to_dict() == {"no shift: test": True, "known shift: test resampled": True,
                                     "known shift: another": False, "outside: greatest_films": False}
    assert targets.loc["known shift: test resampled", "value"] == "80%, 83%"
