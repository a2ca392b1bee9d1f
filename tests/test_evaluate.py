"""Evaluation: reports, figures, any labelled folder, comparisons, adaptation, on a small model trained on
real posters."""
import json

import pandas as pd
import pytest

from postergenre.config import UserError
from postergenre.evaluation.evaluate import BASELINE_PRIOR, BASELINE_TOPK, compare_models, evaluate


def test_evaluate_writes_json_report_and_figures(trained_project):
    result = evaluate("efficientnet_lite0", paths=trained_project, n_boot=30)
    folder = trained_project.models / "efficientnet_lite0"
    saved = json.loads((folder / "eval_test.json").read_text())
    assert saved["posters_evaluated"] == len(pd.read_csv(trained_project.split_csv("test")))
    assert set(saved["metrics"]) == {"efficientnet_lite0", BASELINE_TOPK, BASELINE_PRIOR}
    for name, figures in saved["metrics"].items():
        for metric in ("macro_ap", "micro_ap", "top3_hit_rate", "top3_count", "top_n_accuracy", "macro_f1@tuned",
                       "micro_f1@0.5", "hamming_loss@tuned", "precision_at_3"):
            value, low, high = figures[metric]
            assert low <= value <= high, (name, metric)
    assert len(saved["per_genre"]) == len(result["per_genre"]) and "roc_auc" in saved["per_genre"][0]
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


def test_comparison_covers_every_model(trained_project):
    comparison, results = compare_models(paths=trained_project, n_boot=20, figures=False)
    assert comparison.index[0] == "efficientnet_lite0" and comparison.index[-1].startswith("baseline")
    assert comparison.loc[BASELINE_TOPK, "top3_hit_rate"].count("[") == 1
    with pytest.raises(UserError, match="no trained model"):
        compare_models(paths=type(trained_project).default(trained_project.root / "nothing"))


def test_evaluate_adapts_to_a_collection_and_reports_calibration(trained_project, small_folder):
    result = evaluate(trained_project.models / "efficientnet_lite0", small_folder, trained_project, n_boot=20,
                      figures=False, adapt_prior=True)
    adapted = [name for name in result["metrics"] if "adapted" in name]
    assert adapted == ["efficientnet_lite0 (adapted: gated)"], result["metrics"].keys()
    assert set(result["adaptation"]["evidence"]) == {"mean", "low", "high", "z", "kept"}
    assert result["adaptation"]["note"].startswith(f"genre mix estimated from {result['posters_evaluated']} posters")
    assert len(result["adaptation"]["mix"]) == len(result["per_genre"])
    assert {"ece_before", "ece_after", "method"} <= set(result["calibration"])
    assert "expected calibration error" in (trained_project.models / "efficientnet_lite0" / "eval_small.md").read_text()
