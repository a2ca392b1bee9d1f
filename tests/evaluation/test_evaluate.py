"""Evaluation: reports, figures, any labelled folder, comparisons, adaptation, on a small model trained on
real posters."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, f1_score

from postergenre.config import UserError
from postergenre.evaluation.evaluate import BASELINE_PRIOR, BASELINE_TOPK, compare_models, evaluate, map_labels
from postergenre.inference.predictor import load
from tests.conftest import clone_project


def test_evaluate_writes_json_report_and_figures(trained_project):
    evaluate("efficientnet_lite0", paths=trained_project, n_boot=30)
    folder = trained_project.models / "efficientnet_lite0"
    saved = json.loads((folder / "eval_test.json").read_text())
    assert saved["posters_evaluated"] == len(pd.read_csv(trained_project.split_csv("test")))
    assert set(saved["metrics"]) == {"efficientnet_lite0", BASELINE_TOPK, BASELINE_PRIOR}
    for name, figures in saved["metrics"].items():
        for metric in ("macro_ap", "micro_ap", "top3_hit_rate", "top3_count", "top_n_accuracy", "macro_f1@tuned",
                       "micro_f1@0.5", "hamming_loss@tuned", "precision_at_3"):
            value, low, high = figures[metric]
            assert low <= value <= high, (name, metric)
    # the saved figures against scikit-learn on the model's own scores, worked out here independently
    trained = load(folder)
    frame, y, _ = map_labels(pd.read_csv(trained_project.split_csv("test")), trained.vocabulary)
    scores = trained.scores(frame)[1]
    present = (y.sum(axis=0) > 0) & (y.sum(axis=0) < len(y))
    model = saved["metrics"]["efficientnet_lite0"]
    assert model["macro_ap"][0] == pytest.approx(average_precision_score(y[:, present], scores[:, present]))
    predicted = scores >= trained.thresholds
    assert model["macro_f1@tuned"][0] == pytest.approx(f1_score(y[:, present], predicted[:, present],
                                                                average="macro", zero_division=0))
    assert saved["genres_averaged"]["count"] == int(present.sum()) < len(trained.genres) or present.all()
    top3 = np.argsort(-trained.train_prior, kind="stable")[:3]
    assert saved["metrics"][BASELINE_TOPK]["top3_hit_rate"][0] == pytest.approx((y[:, top3].sum(axis=1) > 0).mean())
    assert len(saved["per_genre"]) == len(trained.genres) and "roc_auc" in saved["per_genre"][0]
    report = (folder / "eval_test.md").read_text()
    assert "| macro_ap |" in report and BASELINE_TOPK in report
    for name in ("ap_vs_frequency", "precision_recall", "reliability", "best_and_worst_genres", "gallery"):
        assert (folder / "figures_test" / f"{name}.png").stat().st_size > 5000


def test_any_labelled_folder_can_be_evaluated(trained_project, sample, tmp_path):
    labels = pd.read_csv(sample / "labels.csv", dtype=str).iloc[5::40].head(60).reset_index(drop=True)
    labels.loc[0, "genres"] = "Science Fiction|western"
    labels.loc[1, "genres"] = "Western"
    labels.loc[2, "genres"] = "comedy"
    folder = tmp_path / "outside"
    folder.mkdir()
    labels.to_csv(folder / "labels.csv", index=False)
    (folder / "images").symlink_to(sample / "images")
    result = evaluate(trained_project.models / "efficientnet_lite0", folder, trained_project, n_boot=20,
                      figures=False)
    assert result["set"] == "outside"
    assert result["mapping"]["unknown_genres"]["Western"] == 1 and result["mapping"]["unknown_genres"]["western"] == 1
    assert result["mapping"]["posters_without_known_genres"] >= 1
    assert result["posters_evaluated"] == 60 - result["mapping"]["posters_without_known_genres"]


def test_comparison_covers_every_model(trained_project, tmp_path):
    paths = clone_project(trained_project, tmp_path)
    shutil.copytree(trained_project.models / "efficientnet_lite0", paths.models / "efficientnet_lite0")
    strict = shutil.copytree(paths.models / "efficientnet_lite0", paths.models / "strict")
    thresholds = json.loads((strict / "thresholds.json").read_text())  # a second model: every threshold 0.95
    (strict / "thresholds.json").write_text(json.dumps({k: 0.95 for k in thresholds} if isinstance(thresholds, dict)
                                                       else [0.95] * len(thresholds)))
    comparison, results = compare_models(paths=paths, n_boot=20, figures=False)
    assert list(comparison.index) == ["efficientnet_lite0", "strict", BASELINE_TOPK, BASELINE_PRIOR]
    assert [r["model"] for r in results] == ["efficientnet_lite0", "strict"]
    assert comparison.loc["strict", "macro_ap"] == comparison.loc["efficientnet_lite0", "macro_ap"], "same scores"
    assert comparison.loc["strict", "micro_f1@tuned"] != comparison.loc["efficientnet_lite0", "micro_f1@tuned"], \
        "each model's own thresholds"
    assert comparison.loc[BASELINE_TOPK, "top3_hit_rate"].count("[") == 1
    with pytest.raises(UserError, match="no trained model"):
        compare_models(paths=type(trained_project).default(trained_project.root / "nothing"))


def test_evaluate_adapts_to_a_collection_and_reports_calibration(trained_project, small_folder):
    result = evaluate(trained_project.models / "efficientnet_lite0", small_folder, trained_project, n_boot=20,
                      figures=False, adapt_prior=True)
    adapted = [name for name in result["metrics"] if "adapted" in name]
    assert adapted == ["efficientnet_lite0 (adapted: gated)"], result["metrics"].keys()
    evidence = {k: np.array(v) for k, v in result["adaptation"]["evidence"].items()}
    moved = evidence["kept"] > 0
    assert (moved == (np.abs(evidence["z"]) > 3)).all(), "a genre moves exactly where its evidence passes the gate"
    mix, training = np.array(result["adaptation"]["mix"]), np.array(result["adaptation"]["training_mix"])
    assert np.allclose(mix[~moved], np.clip(training[~moved], 1e-3, 1 - 1e-3), atol=1e-4)
    assert (np.sign(mix - training)[moved] == np.sign(evidence["mean"] - training)[moved]).all()
    genres = result["adaptation"]["genres"]
    given = pd.DataFrame({"genre": genres, "share": [0.9 if g == "Horror" else 0.02 for g in genres]})
    given.to_csv(small_folder.parent / "mix.csv", index=False)
    shifted = evaluate(trained_project.models / "efficientnet_lite0", small_folder, trained_project, n_boot=20,
                       figures=False, prior=small_folder.parent / "mix.csv")
    row = next(name for name in shifted["metrics"] if "adapted" in name)
    assert np.allclose(shifted["adaptation"]["mix"], np.clip(given.share, 1e-3, 1 - 1e-3), atol=1e-3)
    plain, adapted = shifted["metrics"]["efficientnet_lite0"], shifted["metrics"][row]
    assert adapted["top3_hit_rate"][0] != plain["top3_hit_rate"][0], "the given mix moves the answers"
    assert adapted["macro_ap"][0] == pytest.approx(plain["macro_ap"][0]), "a genre's ranking of posters stays"
    assert result["adaptation"]["note"].startswith(f"genre mix estimated from {result['posters_evaluated']} posters")
    assert len(result["adaptation"]["mix"]) == len(result["per_genre"])
    assert {"ece_before", "ece_after", "method"} <= set(result["calibration"])
    assert "expected calibration error" in (trained_project.models / "efficientnet_lite0" / "eval_small.md").read_text()
