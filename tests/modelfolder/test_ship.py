"""Shipping a trained model as the default: its files, a current model.tflite, its test metrics."""
import json

import pytest

from postergenre.config import UserError
from postergenre.evaluation.evaluate import evaluate
from postergenre.modelfolder.card import CARD_FILE, model_card
from postergenre.modelfolder.layout import LITERT_SOURCES_FILE, NETWORK_FILES, SHIPPED_FILES, TFLITE_FILE, is_current
from postergenre.inference.predictor import load
from postergenre.modelfolder.ship import ship
from postergenre.app.rebuild import ship_model


def manifest_value(folder, metric="macro_ap"):
    figures = json.loads((folder / "manifest.json").read_text())["test_metrics"]
    return next(v for k, v in figures.items() if not k.startswith("baseline"))[metric][0]


def test_ship_copies_the_head_with_its_test_metrics(trained_project, tmp_path):
    result = evaluate(trained_project.models / "efficientnet_lite0", paths=trained_project, n_boot=20, figures=False)
    target = ship_model(trained_project.models / "efficientnet_lite0", tmp_path / "default", trained_project,
                        result=result)
    assert {p.name for p in target.iterdir()} == {*SHIPPED_FILES, "head.keras", "manifest.json",
                                                  TFLITE_FILE, LITERT_SOURCES_FILE, CARD_FILE}
    assert (target / CARD_FILE).read_text() == model_card(target), "the card is written from the shipped manifest"
    assert f"{manifest_value(target):.3f}" in (target / CARD_FILE).read_text()
    assert is_current(target, NETWORK_FILES), "the shipped model.tflite is exported from the shipped head"
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["shipped_from"] == "models/efficientnet_lite0" and manifest["test_posters"] > 0
    value, low, high = manifest["test_metrics"]["efficientnet_lite0"]["macro_ap"]
    assert 0 < value <= 1 and low < high
    assert load(target).genres == load(trained_project.models / "efficientnet_lite0").genres
    full_model = tmp_path / "custom_cnn"
    full_model.mkdir()
    (full_model / "manifest.json").write_text(json.dumps({"model": "custom_cnn", "full_model": True}))
    with pytest.raises(UserError, match="only a pretrained model or a blend of them can ship"):
        ship(full_model, tmp_path / "again", result, trained_project.root)
