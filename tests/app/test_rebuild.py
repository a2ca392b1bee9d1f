"""`postergenre rebuild RECIPE`: the recipe file, its checks, the stages' keys, resuming, and the run end to end."""
import shutil
from pathlib import Path

import pytest

from postergenre.app import rebuild as rebuild_module
from postergenre.app.rebuild import Rebuild, comparison
from postergenre.app.recipe import read_recipe
from postergenre.cli import main
from postergenre.config import REPO_ROOT, Paths
from postergenre.data.io import read_json

from tests.conftest import require_shared

DEFAULT_RECIPE = REPO_ROOT / "recipes" / "default.toml"
SHIPPED = REPO_ROOT / "models" / "default"


def write_recipe(folder: Path, text: str) -> Path:
    path = folder / "recipe.toml"
    path.write_text(text)
    return path


def small_recipe(source: Path, member_two: str = "learning_rate = 0.001", backbone: str = "efficientnet_lite0") -> str:
    """Two members, one a head and one fine-tuned for an epoch, at a small input size."""
    return f"""
name = "tiny"
seed = 7
[data]
sources = ["{source}"]
[[members]]
name = "head"
backbone = "efficientnet_lite0"
input_size = [112, 80]
epochs = 3
[[members]]
name = "tuned"
backbone = "{backbone}"
input_size = [112, 80]
epochs = 2
fine_tune_epochs = 1
fine_tune_layers = 4
{member_two}
[evaluate]
bootstrap = 20
adapt_prior = false
"""


# --- the recipe file -------------------------------------------------------------------------------------------

def test_the_default_recipe_describes_the_shipped_default():
    """Every member setting, the blend's calibration, the words' reader and the vocabulary rules of the recipe are
    the ones models/default was made with (its members' manifests say how they were trained), and the recipe's text
    is the one `make default` shipped it from, [ship] included."""
    recipe = read_recipe(DEFAULT_RECIPE)
    shipped = read_json(SHIPPED / "manifest.json")
    assert shipped["recipe"]["text"] == DEFAULT_RECIPE.read_text(encoding="utf-8"), "models/default is not what " \
        "`make default` makes from recipes/default.toml: rebuild it"
    assert recipe.name == shipped["config"]["name"]
    assert [m["name"] for m in recipe.members()] == [m["name"] for m in shipped["members"]]
    for member in recipe.members():
        trained = read_json(SHIPPED / "members" / member["name"] / "manifest.json")["config"]
        config = recipe.member_config(member, member["name"])
        for key, value in config.items():
            if key == "name":  # the folder it was trained in
                continue
            expected = trained.get(key, 0 if key == "feature_variants" else None)
            assert (list(value) if isinstance(value, tuple) else value) == expected, (member["name"], key)
    assert recipe.section("blend")["calibration"] == shipped["config"]["calibration"]
    assert recipe.ocr_settings().describe()["side"] == shipped["text"]["ocr"]["side"]
    rules = read_json(SHIPPED / "genres.json")["rules"]
    assert {k: v for k, v in vars(recipe.vocabulary_rules()).items() if k in rules} == rules
    assert recipe.split_config().seed == read_json(SHIPPED / "genres.json")["split"]["seed"]
    assert recipe.section("ship").get("quantize", "none") == (shipped.get("quantization") or {}).get("mode", "none")


def test_the_rare_recipe_is_the_default_one_with_a_training_only_source():
    """recipes/rare.toml (issue 41's candidate) differs from recipes/default.toml in its name and its training-only
    source alone, so that its measured difference is the rare posters'."""
    default, rare = read_recipe(DEFAULT_RECIPE), read_recipe(REPO_ROOT / "recipes" / "rare.toml")
    assert [p.name for p in rare.train_only()] == ["kaggle_posters_rare"] and not default.train_only()
    def strip(data):
        return {k: (v if k != "data" else {d: x for d, x in v.items() if d != "train_only"})
                for k, v in data.items() if k != "name"}
    assert strip(rare.data) == strip(default.data)


def test_the_recipe_finds_its_sources_from_its_own_folder():
    recipe = read_recipe(DEFAULT_RECIPE)
    assert [p.name for p in recipe.sources()] == ["kaggle_posters_8k", "kaggle_posters_extra"]
    assert all(p.is_absolute() for p in recipe.sources())


BAD_RECIPES = {
    "unknown key": ("fine_tune_layer = 4", "members[1].fine_tune_layer: unknown key"),
    "unknown backbone": ({"backbone": "efficientnet_lite9"}, "members[1].backbone: unknown backbone 'efficientnet_lite9'"),
    "wrong type": ('patience = "5"', "members[1].patience: expected a whole number, got str '5'"),
    "different vocabulary": ("vocabulary = { min_count = 5 }",
                             "members[1].vocabulary: differs from the recipe's [vocabulary]: members of different "
                             "vocabularies"),
    "value out of range": ("feature_variants = -1", "members[1].feature_variants: -1 is out of range (from 0 to 16)"),
    "unknown quantization": ('learning_rate = 0.001\n[ship]\nquantize = "int4"',
                             "ship.quantize: 'int4' is not one of none, float16, dynamic, int8"),
}


@pytest.mark.parametrize("kind", BAD_RECIPES)
def test_a_bad_recipe_stops_before_any_work_with_one_line(kind, tmp_path, capsys, sample):
    line, message = BAD_RECIPES[kind]
    recipe = write_recipe(tmp_path, small_recipe(sample, **(line if isinstance(line, dict) else {"member_two": line})))
    root = tmp_path / "project"
    assert main(["--root", str(root), "rebuild", str(recipe)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0
    assert error.startswith(f"postergenre rebuild: error: {recipe}: ")
    assert message in error
    assert not root.exists()  # no stage started


def test_a_missing_source_is_named_with_its_key(tmp_path, capsys, sample):
    recipe = write_recipe(tmp_path, small_recipe(sample).replace(str(sample), str(tmp_path / "nowhere")))
    assert main(["--root", str(tmp_path / "project"), "rebuild", str(recipe)]) == 2
    error = capsys.readouterr().err
    assert f"{recipe}: data.sources[0]: {tmp_path / 'nowhere'}: no such file or folder" in error


def test_a_recipe_that_is_not_toml_or_lacks_members_is_refused(tmp_path, capsys, sample):
    broken = write_recipe(tmp_path, 'name = "x"\n[data\n')
    assert main(["rebuild", str(broken)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    bare = write_recipe(tmp_path, f'name = "x"\n[data]\nsources = ["{sample}"]\n')
    assert main(["rebuild", str(bare)]) == 2
    assert f"{bare}: members: missing" in capsys.readouterr().err


def test_a_rebuild_never_writes_over_models_default(tmp_path, sample):
    recipe = read_recipe(write_recipe(tmp_path, small_recipe(sample)))
    with pytest.raises(Exception, match="never over it"):
        Rebuild(recipe, Paths.default(tmp_path), name="default")


# --- stages and their keys ------------------------------------------------------------------------------------

def test_the_check_says_which_figures_lie_inside_the_shipped_interval():
    rebuilt = {"test": {"new": {"macro_ap": [0.44, 0.42, 0.46], "top3_hit_rate": [0.80, 0.7, 0.9],
                                "micro_f1@tuned": [0.5, 0.4, 0.6]}}}
    shipped = {"test": {"old": {"macro_ap": [0.441, 0.424, 0.460], "top3_hit_rate": [0.915, 0.896, 0.928],
                                "micro_f1@tuned": [0.519, 0.505, 0.533]}}}
    report = comparison(rebuilt, shipped, "new", "old")
    assert {(r["figure"], r["inside"]) for r in report["rows"]} == {("macro_ap", True), ("top3_hit_rate", False),
                                                                     ("micro_f1@tuned", False)}
    assert report["inside"] == 1 and report["figures"] == 3


# --- end to end -----------------------------------------------------------------------------------------------

@pytest.mark.trains
@pytest.mark.slow
def test_a_recipe_rebuilds_end_to_end_resumes_and_records_itself(tmp_path, small_folder, capsys):
    require_shared()
    recipe_path = write_recipe(tmp_path, small_recipe(small_folder))
    root = tmp_path / "project"
    args = ["--root", str(root), "rebuild", str(recipe_path), "--limit", "150", "--no-progress"]
    assert main(args) == 0
    folder = root / "models" / "tiny"
    manifest = read_json(folder / "manifest.json")
    recipe = read_recipe(recipe_path)
    assert manifest["recipe"]["hash"] == recipe.hash and manifest["recipe"]["text"] == recipe_path.read_text()
    assert manifest["lock"] == rebuild_module.lock_hash()
    assert "postergenre rebuild" in (folder / "README.md").read_text()
    assert 'name = "tuned"' in (folder / "README.md").read_text()
    assert [m["name"] for m in manifest["members"]] == ["head", "tuned"]
    assert manifest["text"]["validation"]["fused"]["macro_ap"] > 0
    assert manifest["test_metrics"]["tiny"]["macro_ap"][0] > 0
    report = read_json(folder / "rebuild_report.json")
    assert report["figures"] >= 3 and report["rows"][0]["set"] == "test"
    out = capsys.readouterr().out
    assert out.count(": started") == 11 and out.count(": done in") == 11

    assert main(args) == 0  # again: every stage current, nothing done
    out = capsys.readouterr().out
    assert out.count("current, skipped") == 11 and "0 stage(s) ran" in out

    changed = recipe_path.read_text().replace("learning_rate = 0.001", "learning_rate = 0.002")
    recipe_path.write_text(changed)
    assert main(args) == 0
    out = capsys.readouterr().out
    skipped = [line.split("] ")[1].split(":")[0] for line in out.splitlines() if "current, skipped" in line]
    assert skipped == ["get-data", "clean", "encode", "read-text", "train head"]
    assert "train tuned: started" in out
    assert read_json(folder / "manifest.json")["recipe"]["hash"] != recipe.hash
    shutil.rmtree(root)


@pytest.mark.parametrize("member", [0, 1])
def test_a_member_trained_on_workers_gets_the_same_settings_through_the_command_line(member, tmp_path):
    """--workers starts `postergenre train` processes: their arguments must make the member's very TrainConfig."""
    from postergenre.cli import build_parser
    from postergenre.training.options import TrainConfig, from_arguments
    recipe = read_recipe(DEFAULT_RECIPE)
    config = TrainConfig(**recipe.member_config(recipe.members()[member], "x.parts/m"))
    args = build_parser().parse_args(rebuild_module.train_arguments(config, tmp_path))
    assert args.root == tmp_path and args.stage == "train"
    assert from_arguments(args) == config
