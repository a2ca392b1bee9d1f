"""Evaluation outputs and single-poster prediction, on a small model trained on real posters."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from postergenre.config import REPO_ROOT, UserError
from postergenre.evaluation.evaluate import BASELINE_PRIOR, BASELINE_TOPK, compare_models, evaluate
from postergenre.inference.predict import format_line, predict
from postergenre.inference import litert
from postergenre.inference.model_folder import NETWORK_FILES, SHIPPED_FILES, ship
from postergenre.inference.predictor import load
from postergenre.training.train import TrainConfig, train
from tests.conftest import clone_project


@pytest.fixture(scope="module")
def trained_project(encoded_project, tmp_path_factory):
    paths = clone_project(encoded_project, tmp_path_factory.mktemp("trained"))
    # 200 posters: batches of 64 give the head enough steps in 3 epochs for Grad-CAM to differ between genres
    train(TrainConfig(model="efficientnet_lite0", epochs=3, input_size=(112, 76), head_batch_size=64), paths)
    return paths


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


@pytest.fixture
def odd_posters(tmp_path, sample):
    source = sorted((sample / "images").glob("*.jpg"))[:6]
    out = {}
    with Image.open(source[0]) as im:
        im.save(tmp_path / "poster.png")
        im.save(tmp_path / "poster.webp", lossless=True)
        im.convert("L").save(tmp_path / "gray.jpg")
        im.convert("CMYK").save(tmp_path / "cmyk.jpg")
        rgba = im.convert("RGBA")
        rgba.putalpha(180)
        rgba.save(tmp_path / "alpha.png")
        im.resize((1500, 2200)).save(tmp_path / "large.jpg")
    for name in ("poster.png", "poster.webp", "gray.jpg", "cmyk.jpg", "alpha.png", "large.jpg"):
        out[name] = tmp_path / name
    (tmp_path / "notes.jpg").write_text("not a poster")
    out["notes.jpg"] = tmp_path / "notes.jpg"
    out["missing.jpg"] = tmp_path / "missing.jpg"
    return out


def test_predict_accepts_every_format_and_names_bad_files(trained_project, odd_posters):
    table = predict(list(odd_posters.values()), trained_project.models / "efficientnet_lite0", top=3,
                    paths=trained_project).table
    by_name = {p.split("/")[-1]: row for p, row in zip(table.poster, table.to_dict("records"))}
    for name in ("poster.png", "poster.webp", "gray.jpg", "cmyk.jpg", "alpha.png", "large.jpg"):
        assert not by_name[name]["error"], name
        assert len(by_name[name]["top"]) == 3
    assert "notes.jpg: not an image" in by_name["notes.jpg"]["error"]
    assert "missing.jpg: file not found" in by_name["missing.jpg"]["error"]
    png, webp = by_name["poster.png"], by_name["poster.webp"]
    assert [g for g, _ in png["top"]] == [g for g, _ in webp["top"]]
    line = format_line(png)
    assert line.startswith("poster   ") and "(0." in line and "above thresholds" in line


def test_cli_predict_json_and_folder_csv(trained_project, odd_posters, tmp_path):
    model = str(trained_project.models / "efficientnet_lite0")
    cli = [sys.executable, "-m", "postergenre.cli", "--root", str(trained_project.root), "predict", "--model", model]
    result = subprocess.run(cli + [str(odd_posters["gray.jpg"]), str(odd_posters["missing.jpg"]), "--json"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert records[0]["top"][0][1] >= records[0]["top"][1][1] and records[1]["error"].endswith("file not found")
    assert "missing.jpg: file not found" in result.stderr and "Traceback" not in result.stderr
    out = tmp_path / "predictions.csv"
    result = subprocess.run(cli + [str(odd_posters["gray.jpg"].parent), "--output", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    written = pd.read_csv(out)
    assert len(written) == 7 and written.error.notna().sum() == 1 and written.top.notna().sum() == 6


def test_gradcam_points_somewhere_for_each_genre(trained_project, sample):
    trained = load(trained_project.models / "efficientnet_lite0")
    from postergenre.data.images import load_poster
    image = load_poster(sorted((sample / "images").glob("*.jpg"))[3], trained.input_size)
    # a genre with no positive evidence has an all-zero map (Grad-CAM's ReLU), so compare the two the model favours
    scores = trained.keras_model()(image[None], training=False).numpy()[0]
    favoured = [trained.genres[i] for i in np.argsort(-scores)[:2]]
    maps = [trained.gradcam(image, g) for g in favoured]
    for heatmap in maps:
        assert heatmap.shape == image.shape[:2] and heatmap.min() >= 0 and heatmap.max() <= 1
    assert maps[0].max() == 1, f"{favoured[0]}, the top genre, has evidence somewhere"
    assert not np.allclose(maps[0], maps[1]), "different genres have different evidence"


def test_ship_copies_the_head_with_its_test_metrics(trained_project, tmp_path):
    result = evaluate(trained_project.models / "efficientnet_lite0", paths=trained_project, n_boot=20, figures=False)
    target = ship(trained_project.models / "efficientnet_lite0", tmp_path / "default", result, trained_project.root)
    assert {p.name for p in target.iterdir()} == {*SHIPPED_FILES, "head.keras", "manifest.json",
                                                  litert.TFLITE_FILE, litert.SOURCES_FILE}
    assert litert.is_current(target, NETWORK_FILES), "the shipped model.tflite is exported from the shipped head"
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["shipped_from"] == "models/efficientnet_lite0" and manifest["test_posters"] > 0
    value, low, high = manifest["test_metrics"]["efficientnet_lite0"]["macro_ap"]
    assert 0 < value <= 1 and low < high
    assert load(target).genres == load(trained_project.models / "efficientnet_lite0").genres
    full_model = tmp_path / "custom_cnn"
    full_model.mkdir()
    (full_model / "manifest.json").write_text(json.dumps({"model": "custom_cnn", "full_model": True}))
    with pytest.raises(UserError, match="only a pretrained model can ship"):
        ship(full_model, tmp_path / "again", result, trained_project.root)


def test_shipped_default_model_predicts_offline(sample):
    default = REPO_ROOT / "models" / "default"
    assert (default / "head.keras").exists() or (default / "model.weights.h5").exists(), \
        "the default model ships in the repository"
    manifest = json.loads((default / "manifest.json").read_text())
    assert manifest["model"].startswith("efficientnet_lite") and "test_metrics" in manifest
    recorded = [*manifest["data_files"], manifest["shipped_from"]]
    assert not any(Path(p).is_absolute() for p in recorded), "a shipped manifest names no path of the machine"
    poster = sorted((sample / "images").glob("*.jpg"))[0]
    result = subprocess.run([sys.executable, "-m", "postergenre.cli", "predict", str(poster)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(poster.stem) and result.stdout.count("(0.") == 3


def test_evaluate_adapts_to_a_collection_and_reports_calibration(trained_project, small_folder):
    result = evaluate(trained_project.models / "efficientnet_lite0", small_folder, trained_project, n_boot=20,
                      figures=False, adapt_prior=True)
    adapted = [name for name in result["metrics"] if "adapted" in name]
    assert adapted == ["efficientnet_lite0 (adapted: cc)"], result["metrics"].keys()
    assert result["adaptation"]["note"].startswith(f"genre mix estimated from {result['posters_evaluated']} posters")
    assert len(result["adaptation"]["mix"]) == len(result["per_genre"])
    assert {"ece_before", "ece_after", "method"} <= set(result["calibration"])
    assert "expected calibration error" in (trained_project.models / "efficientnet_lite0" / "eval_small.md").read_text()


def test_cli_predict_json_gives_every_poster_and_takes_a_mix(trained_project, sample, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for poster in sorted((sample / "images").glob("*.jpg"))[:25]:
        (folder / poster.name).symlink_to(poster)
    model = trained_project.models / "efficientnet_lite0"
    genres = json.loads((model / "genres.json").read_text())["genres"]
    mix = tmp_path / "mix.csv"
    pd.DataFrame({"genre": genres, "share": [0.9 if g == genres[-1] else 0.01 for g in genres]}).to_csv(mix,
                                                                                                       index=False)
    cli = [sys.executable, "-m", "postergenre.cli", "--root", str(trained_project.root), "predict", "--model",
           str(model), str(folder), "--json", "--output", str(tmp_path / "p.csv")]
    plain = subprocess.run(cli, capture_output=True, text=True)
    assert plain.returncode == 0, plain.stderr
    assert len(json.loads(plain.stdout)) == 25, "--json gives programs every poster, not the terminal preview"
    moved = subprocess.run(cli + ["--prior", str(mix)], capture_output=True, text=True)
    assert moved.returncode == 0, moved.stderr
    assert "genre mix given by the user" in moved.stderr
    before, after = json.loads(plain.stdout), json.loads(moved.stdout)
    key = f"p_{genres[-1]}"
    assert all(a[key] > b[key] for a, b in zip(after, before))
    assert sum(a["top"][0][0] == genres[-1] for a in after) > sum(b["top"][0][0] == genres[-1] for b in before)
