"""Prediction through the Predictor and the CLI: every format, bad files named, JSON and CSV, a given genre
mix, Grad-CAM, the shipped default offline."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from postergenre.config import REPO_ROOT
from postergenre.inference.predict import format_line, predict
from postergenre.inference.predictor import load


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
    together = trained.gradcam(image, favoured)  # one pass for both, as the page asks
    assert together.shape == (2, *image.shape[:2]) and np.allclose(together, np.stack(maps), atol=1e-4)


def test_shipped_default_model_predicts_offline(sample):
    default = REPO_ROOT / "models" / "default"
    from postergenre.inference.model_folder import network_files
    assert any((default / name).exists() for name in network_files(default)), \
        "the default model's network ships in the repository"
    manifest = json.loads((default / "manifest.json").read_text())
    backbones = [m["model"] for m in manifest.get("members", [])] or [manifest["model"]]
    assert all(b.startswith("efficientnet_lite") for b in backbones) and "test_metrics" in manifest
    recorded = [*manifest["data_files"], manifest["shipped_from"]]
    assert not any(Path(p).is_absolute() for p in recorded), "a shipped manifest names no path of the machine"
    poster = sorted((sample / "images").glob("*.jpg"))[0]
    result = subprocess.run([sys.executable, "-m", "postergenre.cli", "predict", str(poster)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(poster.stem) and result.stdout.count("(0.") == 3
