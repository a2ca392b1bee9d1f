"""Prediction through the Predictor and the CLI: every format, bad files named, JSON and CSV, a given genre
mix, Grad-CAM, the shipped default offline."""
import io
import json
import os
import re
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
    assert line.startswith("poster   ") and " 0." in line and "above thresholds: " in line
    above = png["above_threshold"]
    probability = {g: png[f"p_{g}"] for g in above}
    assert above == sorted(above, key=lambda g: -probability[g]), "the genres above, most probable first"


def test_cli_predict_json_and_folder_csv(trained_project, odd_posters, tmp_path):
    model = str(trained_project.models / "efficientnet_lite0")
    cli = [sys.executable, "-m", "postergenre.cli", "--root", str(trained_project.root), "predict", "--model", model]
    result = subprocess.run(cli + [str(odd_posters["gray.jpg"]), str(odd_posters["missing.jpg"]), "--json"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1, "a poster failed: exit 1\n" + result.stderr
    records = json.loads(result.stdout)
    labels = records[0]["labels"]
    assert [set(entry) for entry in labels] == [{"label", "score"}] * 3 and labels[0]["score"] >= labels[1]["score"]
    assert set(records[0]["probabilities"]) == set(json.loads((Path(model) / "genres.json").read_text())["genres"])
    assert "error" not in records[0] and "words" not in records[0], "absent fields are left out"
    assert records[1] == {"poster": str(odd_posters["missing.jpg"]), "title": "missing",
                          "error": f"{odd_posters['missing.jpg']}: file not found"}
    assert result.stderr.count("missing.jpg: file not found") == 1 and "Traceback" not in result.stderr

    one = subprocess.run(cli + [str(odd_posters["gray.jpg"])], capture_output=True, text=True, cwd=tmp_path)
    assert one.returncode == 0 and one.stdout.startswith("gray   ") and one.stdout.count("\n") == 1, one.stdout
    assert one.stderr.strip() == "", "nothing on stderr when every poster was predicted"

    folder = subprocess.run(cli + [str(odd_posters["gray.jpg"].parent)], capture_output=True, text=True, cwd=tmp_path)
    assert folder.returncode == 1, "notes.jpg is not an image"
    written = pd.read_csv(io.StringIO(folder.stdout))
    assert len(written) == 7 and written.error.notna().sum() == 1 and written.top.notna().sum() == 6
    assert "words" not in written and not list(tmp_path.rglob("*.csv")), "a folder's CSV goes to stdout, no file"
    errors = [line for line in folder.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "notes.jpg: not an image" in errors[0], folder.stderr

    out = tmp_path / "predictions.csv"
    result = subprocess.run(cli + [str(odd_posters["gray.jpg"].parent), "--output", str(out)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines()[0] == f"postergenre predict: 7 posters -> {out}"
    assert pd.read_csv(out).equals(written), "the same CSV, into the file"


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
           str(model), str(folder), "--json"]
    plain = subprocess.run(cli, capture_output=True, text=True)
    assert plain.returncode == 0, plain.stderr
    assert len(json.loads(plain.stdout)) == 25, "--json gives programs every poster"
    moved = subprocess.run(cli + ["--prior", str(mix)], capture_output=True, text=True)
    assert moved.returncode == 0, moved.stderr
    assert "genre mix given by the user" in moved.stderr
    before, after = json.loads(plain.stdout), json.loads(moved.stdout)
    last = genres[-1]
    assert all(a["probabilities"][last] > b["probabilities"][last] for a, b in zip(after, before))
    assert sum(a["labels"][0]["label"] == last for a in after) > sum(b["labels"][0]["label"] == last for b in before)
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
    from postergenre.modelfolder.layout import network_files
    assert any((default / name).exists() for name in network_files(default)), \
        "the default model's network ships in the repository"
    manifest = json.loads((default / "manifest.json").read_text())
    backbones = [m["model"] for m in manifest.get("members", [])] or [manifest["model"]]
    assert all(b.startswith("efficientnet_lite") for b in backbones) and "test_metrics" in manifest
    recorded = [*manifest["data_files"], manifest["shipped_from"]]
    assert not any(Path(p).is_absolute() for p in recorded), "a shipped manifest names no path of the machine"
    poster = sorted((sample / "images").glob("*.jpg"))[0]
    # the network taken away inside the process: any connection (a model hub, a weights download) raises
    offline = ("import socket, sys\n"
               "def refuse(*args, **kwargs): raise OSError('the test took the network away')\n"
               "socket.socket.connect = socket.socket.connect_ex = socket.create_connection = refuse\n"
               "from postergenre.cli import main\n"
               "sys.exit(main(['predict', sys.argv[1]]))")
    result = subprocess.run([sys.executable, "-c", offline, str(poster)], capture_output=True, text=True,
                            env={**os.environ, "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(poster.stem) and len(re.findall(r"[A-Z][\w-]+ 0\.\d\d", result.stdout)) >= 3
    assert "the test took the network away" not in result.stderr
