"""Blending trained models into one network: the weights chosen on validation, one model.tflite that computes
the weighted log-odds of its members, shipped and loaded like any model."""
import json
import shutil

import numpy as np
import pytest

from postergenre.config import UserError
from postergenre.data.images import load_poster
from postergenre.evaluation.evaluate import evaluate
from postergenre.inference import litert
from postergenre.modelfolder.layout import LITERT_SOURCES_FILE, is_current, network_files, read_manifest
from postergenre.inference.predictor import load
from postergenre.scoring.calibration import sigmoid
from postergenre.training.ensemble import blend, choose_weights, weight_grid
from tests.conftest import clone_project, real_posters

pytestmark = pytest.mark.xdist_group("blend")  # one worker builds the blend fixture once for every test here


def test_the_weight_grid_sums_to_one_and_weights_every_member():
    for members, rows in ((2, 9), (3, 36)):
        grid = weight_grid(members)
        assert grid.shape == (rows, members) and np.allclose(grid.sum(axis=1), 1) and (grid > 0).all()


def test_the_weights_favour_the_member_that_ranks_the_posters():
    rng = np.random.default_rng(0)
    y = (rng.random((400, 5)) < 0.3).astype(float)
    informative = np.where(y > 0, 1.0, -1.0) + rng.normal(0, 1.5, y.shape)
    noise = rng.normal(0, 1, y.shape)
    weights, tried = choose_weights(y, np.stack([noise, informative], axis=1))
    assert weights[1] >= 0.8, weights
    assert max(ap for _, ap in tried) == dict((tuple(w), ap) for w, ap in tried)[tuple(weights.round(3))]


@pytest.fixture(scope="module")
def project(trained_project, tmp_path_factory):
    """A copy of the trained project (its Lite0 head included): the models added here stay out of the shared
    project, whose models other tests list."""
    paths = clone_project(trained_project, tmp_path_factory.mktemp("blend"))
    shutil.copytree(trained_project.models / "efficientnet_lite0", paths.models / "efficientnet_lite0")
    return paths


@pytest.fixture(scope="module")
def blended(project):
    """A blend of the project's Lite0 head (112x76) and a second head at a larger input (128x88)."""
    from postergenre.training.train import TrainConfig, train
    train(TrainConfig(model="efficientnet_lite0", name="lite0_larger", epochs=3, input_size=(128, 88),
                      head_batch_size=64, seed=7), project)
    stale = project.models / "blended" / "text_head.json"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text("{}")  # an earlier blend's text head: fused with other outputs, it must go
    folder = blend(["efficientnet_lite0", "lite0_larger"], "blended", project)
    assert not stale.exists()
    return folder


def test_the_blend_computes_its_members_weighted_log_odds(blended):
    import tensorflow as tf

    from postergenre.modelfolder.network import folder_network
    manifest = read_manifest(blended)
    assert manifest["input_size"] == [128, 88] and [m["name"] for m in manifest["members"]] == \
        ["efficientnet_lite0", "lite0_larger"]
    assert is_current(blended, network_files(blended)), "model.tflite records its members' files"
    assert any(name.startswith("members/") for name in json.loads((blended / LITERT_SOURCES_FILE).read_text()))
    predictor = load(blended)  # LiteRT
    assert isinstance(predictor.network, litert.LiteNetwork)
    images = np.random.default_rng(1).integers(0, 256, (4, 128, 88, 3)).astype(np.float32)
    blended_output = predictor.network(images)
    members = [folder_network(blended / m["folder"], read_manifest(blended / m["folder"]))
               for m in manifest["members"]]
    log_odds = []
    for member in members:
        x = tf.image.resize(images, member.input_shape[1:3]).numpy() \
            if member.input_shape[1:3] != images.shape[1:3] else images
        p = np.clip(member(x, training=False).numpy(), 1e-6, 1 - 1e-6)
        log_odds.append(np.log(p / (1 - p)))
    expected = sigmoid(sum(m["weight"] * z for m, z in zip(manifest["members"], log_odds)))
    assert np.abs(blended_output - expected).max() < 1e-4
    poster = load_poster(real_posters(1)[0], predictor.input_size)
    genre = int(np.argmax(predictor.probabilities([poster])[0][0]))
    heatmap = predictor.gradcam(poster, genre)  # the heaviest member's evidence, on the poster resized for it
    assert heatmap.shape == (128, 88) and 0 <= heatmap.min() and heatmap.max() == pytest.approx(1)
    assert (heatmap < 0.99).mean() > 0.5, "the evidence lies somewhere, not everywhere (an all-zero map fails above)"


def test_a_blend_ships_and_loads_from_its_shipped_members(blended, project, tmp_path):
    from postergenre.modelfolder.ship import ship
    result = evaluate(blended, paths=project, n_boot=20, figures=False, progress=False)
    target = ship(blended, tmp_path / "default", result, project.root)
    assert not (target / "model.keras").exists() and (target / "members" / "lite0_larger" / "head.keras").exists()
    assert is_current(target, network_files(target))
    assert read_manifest(target)["test_posters"] > 0 and read_manifest(target)["members"][1]["weight"] > 0
    images = np.random.default_rng(2).integers(0, 256, (3, 128, 88, 3)).astype(np.float32)
    assert np.allclose(load(target).network(images), load(blended).network(images), atol=1e-5)


def test_members_of_other_genres_or_too_few_are_refused(project, tmp_path):
    with pytest.raises(UserError, match="two or more"):
        blend(["efficientnet_lite0"], "alone", project)
    other = tmp_path / "other_genres"  # outside the shared project's models/, which other tests list
    shutil.copytree(project.models / "efficientnet_lite0", other)
    genres = json.loads((other / "genres.json").read_text())
    genres["genres"] = genres["genres"][:-1]
    (other / "genres.json").write_text(json.dumps(genres))
    with pytest.raises(UserError, match="other_genres: its genres differ"):
        blend(["efficientnet_lite0", str(other)], "mixed", project)
    assert not (project.models / "mixed").exists(), "a refused blend writes nothing"


def test_a_lean_blend_keeps_one_network_for_grad_cam_and_predicts_the_same(blended, project, tmp_path):
    from postergenre.modelfolder.network import folder_network
    from postergenre.modelfolder.lean import make_lean
    from postergenre.modelfolder.ship import ship
    result = evaluate(blended, paths=project, n_boot=20, figures=False, progress=False)
    lean = ship(blended, tmp_path / "lean", result, project.root, lean=True)
    manifest = read_manifest(lean)
    kept = manifest["lean"]["gradcam_member"]
    heaviest = max(range(2), key=lambda i: (manifest["members"][i]["weight"], -i))
    assert kept == manifest["members"][heaviest]["folder"], "the heaviest member that has a head draws Grad-CAM"
    left_out = [f"{m['folder']}/head.keras" for m in manifest["members"] if m["folder"] != kept]
    assert manifest["lean"]["left_out"] == left_out and not any((lean / f).exists() for f in left_out)
    assert (lean / kept / "head.keras").exists()
    members = sum(p.stat().st_size for p in (lean / "members").rglob("*") if p.is_file())
    assert members < sum(p.stat().st_size for p in (blended / "members").rglob("*") if p.is_file())
    assert is_current(lean, network_files(lean)), "model.tflite is still the folder's network"
    images = np.random.default_rng(3).integers(0, 256, (3, 128, 88, 3)).astype(np.float32)
    assert np.allclose(load(lean).network(images), load(blended).network(images), atol=1e-5)
    with pytest.raises(UserError, match="shipped lean.*left out.*make default"):
        folder_network(lean, manifest)
    with pytest.raises(UserError, match="shipped lean"):
        load(lean, "keras")
    poster = load_poster(real_posters(1)[0], (128, 88))
    predictor = load(lean)
    assert predictor.gradcam_drawn_by == kept.split("/")[-1]
    heatmap = predictor.gradcam(poster, int(np.argmax(predictor.probabilities([poster])[0][0])))
    assert heatmap.shape == (128, 88) and heatmap.max() == pytest.approx(1) and (heatmap < 0.99).mean() > 0.5
    from postergenre.modelfolder.card import write_model_card
    assert "lean" in write_model_card(lean).read_text()
    with pytest.raises(UserError, match="only a blend ships lean"):
        make_lean(project.models / "efficientnet_lite0")


def test_a_lean_text_head_keeps_its_weights_in_float16(tmp_path):
    from postergenre.config import REPO_ROOT
    from postergenre.modelfolder.lean import _text_head_as_float16
    from postergenre.text.head import HEAD_ARRAYS
    with np.load(REPO_ROOT / "models" / "default" / HEAD_ARRAYS) as shipped:  # a text head as training saves it
        arrays = {name: shipped[name] for name in shipped.files}
    arrays["coef"] = arrays["coef"].astype(np.float32)
    source = tmp_path / "float32.npz"
    np.savez_compressed(source, **arrays)
    shutil.copy2(source, tmp_path / HEAD_ARRAYS)
    assert _text_head_as_float16(tmp_path) == "float16"
    before, after = np.load(source), np.load(tmp_path / HEAD_ARRAYS)
    assert after["coef"].dtype == np.float16 and (tmp_path / HEAD_ARRAYS).stat().st_size < source.stat().st_size
    assert np.allclose(after["coef"].astype(float), before["coef"], rtol=1e-3, atol=1e-4)
    assert all(np.array_equal(before[k], after[k]) for k in before.files if k != "coef")
    assert _text_head_as_float16(tmp_path / "none") is None
