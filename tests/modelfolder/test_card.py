"""The model card travels with the model: written from its files by training and `ship`, never by hand."""
import json
from pathlib import Path

import yaml

from postergenre.config import REPO_ROOT
from postergenre.modelfolder.card import CARD_FILE, CARD_METRICS, model_card, write_model_card

DEFAULT = REPO_ROOT / "models" / "default"


def header_and_body(text: str) -> tuple[dict, str]:
    assert text.startswith("---\n")
    header, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(header), body


def test_the_shipped_card_is_the_one_its_files_give():
    assert (DEFAULT / CARD_FILE).read_text() == model_card(DEFAULT), \
        "models/default/README.md differs from its manifest: regenerate it with write_model_card, never edit it"


def test_the_card_holds_to_the_manifest(tmp_path):
    manifest = json.loads((DEFAULT / "manifest.json").read_text())
    genres = json.loads((DEFAULT / "genres.json").read_text())
    header, body = header_and_body(model_card(DEFAULT))
    assert header["library_name"] == "keras" and header["pipeline_tag"] == "image-classification"
    assert manifest["model"] in header["tags"] and header["datasets"] and header["metrics"]
    model_key = next(k for k in manifest["test_metrics"] if not k.startswith("baseline"))
    card_metrics = {m["type"]: m["value"] for m in header["model-index"][0]["results"][0]["metrics"]}
    assert card_metrics == {k: round(manifest["test_metrics"][model_key][k][0], 4) for k in CARD_METRICS}
    for section in ("## Intended use", "## Genres it knows", "## Training data and its bias", "## Evaluation",
                    "## Limitations"):
        assert section in body
    table = [line.split("|")[1].strip() for line in body.splitlines()
             if line.startswith("| ") and line.count("|") == 4 and "genre" not in line]
    assert sorted(table) == sorted(genres["genres"]), "a row per genre the model knows, no other"
    for baseline in ("baseline: 3 most frequent genres", "baseline: training prior"):
        low, high = manifest["test_metrics"][baseline]["macro_ap"][1:]
        assert f"[{low:.3f}, {high:.3f}]" in body, "the baselines with their intervals"
    never = body.split("never names a genre outside this list:")[1].splitlines()[0].split(" (")[0].strip(" .").split(", ")
    assert never and not set(never) & set(genres["genres"]) and "Game-Show" in never

    changed = Path(tmp_path / "model")
    changed.mkdir()
    for name in ("manifest.json", "genres.json"):
        (changed / name).write_text((DEFAULT / name).read_text())
    manifest["test_metrics"][model_key]["macro_ap"] = [0.5, 0.49, 0.51]
    (changed / "manifest.json").write_text(json.dumps(manifest))
    assert "0.500 [0.490, 0.510]" in write_model_card(changed).read_text(), "a new manifest, a new card"
    manifest["test_metrics_by_source"] = {"test_extra": {model_key: {**manifest["test_metrics"][model_key],
                                                                      "macro_ap": [0.29, 0.28, 0.31]}}}
    (changed / "manifest.json").write_text(json.dumps(manifest))
    assert "0.290 [0.280, 0.310]" in write_model_card(changed).read_text().split("`test_extra` alone")[1]
