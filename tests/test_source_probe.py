"""The source-shortcut probe and the common JPEG quality it is measured under."""
import numpy as np
from PIL import Image

from postergenre.data.images import recompress
from postergenre.studies.experiments import source_probe


def test_the_probe_finds_a_planted_source_signal_and_nothing_in_noise():
    rng = np.random.default_rng(0)
    second = np.repeat([0, 1], 200)
    noise = rng.normal(size=(400, 32))
    planted = noise.copy()
    planted[:, 3] += 1.5 * second  # one feature moves with the source
    auc_noise, _ = source_probe(noise, second)
    auc_planted, spread = source_probe(planted, second)
    assert 0.4 < auc_noise < 0.6 and auc_planted > 0.8 and spread < 0.1


def test_recompress_gives_the_same_picture_at_a_lower_quality():
    rng = np.random.default_rng(1)
    smooth = np.cumsum(rng.integers(-3, 4, (268, 182, 3)), axis=1).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(smooth)
    low, high = np.asarray(recompress(image, 20), int), np.asarray(recompress(image, 95), int)
    assert low.shape == high.shape == smooth.shape
    assert np.abs(high - smooth).mean() < np.abs(low - smooth).mean() < 20, "a lower quality loses more, not all"


def test_learning_curve_sizes_and_figure(tmp_path, monkeypatch):
    import pandas as pd

    from postergenre.studies import experiments
    from postergenre.evaluation.figures import learning_curve_figure
    rng = np.random.default_rng(0)
    labels = (rng.random((1000, 4)) < 0.3).astype(np.float32)
    features = np.concatenate([labels * 2 + rng.normal(size=(1000, 4)), rng.normal(size=(1000, 12))], axis=1)
    frames = {"train": pd.DataFrame(index=range(800)), "val": pd.DataFrame(index=range(200))}
    monkeypatch.setattr(experiments, "split_tables", lambda paths, limit: (
        frames, ["a", "b", "c", "d"], {"train": labels[:800], "val": labels[800:]}))
    monkeypatch.setattr(experiments, "backbone", lambda *a, **k: None)
    monkeypatch.setattr(experiments, "cached_features",
                        lambda extractor, frames, config, paths: {"train": features[:800], "val": features[800:]})
    curve = experiments.learning_curve(None, epochs=12, patience=3, learning_rate=0.02)
    assert curve.train_posters.tolist() == [200, 400, 800], "halvings of the training split down to 200, and all"
    assert curve.macro_ap.iloc[-1] > 0.6, "features that carry the labels give a head that finds them"
    learning_curve_figure(curve, tmp_path)
    assert (tmp_path / "learning_curve.png").stat().st_size > 5_000


def test_the_curve_takes_its_all_posters_point_from_the_comparison_s_identical_head(monkeypatch):
    import pandas as pd

    from postergenre.studies import experiments
    rng = np.random.default_rng(1)
    labels = (rng.random((600, 3)) < 0.3).astype(np.float32)
    features = np.concatenate([labels * 2 + rng.normal(size=(600, 3)), rng.normal(size=(600, 5))], axis=1)
    frames = {"train": pd.DataFrame(index=range(400)), "val": pd.DataFrame(index=range(200))}
    monkeypatch.setattr(experiments, "split_tables", lambda paths, limit: (
        frames, ["a", "b", "c"], {"train": labels[:400], "val": labels[400:]}))
    monkeypatch.setattr(experiments, "backbone", lambda *a, **k: None)
    monkeypatch.setattr(experiments, "cached_features",
                        lambda extractor, frames, config, paths: {"train": features[:400], "val": features[400:]})
    options = {"epochs": 6, "patience": 2, "learning_rate": 0.02}
    trained = experiments.learning_curve(None, **options)
    compared = experiments.compare_imbalance(None, variants={"bce": {}, "focal": {"loss": "focal"}}, **options)
    fits = []
    real_fit = experiments.fit_head
    monkeypatch.setattr(experiments, "fit_head", lambda *a, **k: fits.append(len(a[0]["train"])) or real_fit(*a, **k))
    reused = experiments.learning_curve(None, compared=compared, **options)
    assert fits == [200], "the head on all 400 posters is not trained again"
    pd.testing.assert_frame_equal(reused.drop(columns="seconds"), trained.drop(columns="seconds"), check_dtype=False)
