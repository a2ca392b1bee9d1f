"""Stage 3: vocabulary rules, multi-hot encoding and the stratified split."""
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from postergenre.config import SplitConfig, VocabularyRules
from postergenre.data.clean import clean
from postergenre.data.encode import apply_rules, canonical_genre, encode, load_splits
from postergenre.data.get_data import get_data


def test_vocabulary_rules():
    rules = VocabularyRules(min_count=2)
    assert canonical_genre("Science Fiction", rules) == "Sci-Fi"
    assert canonical_genre("science fiction", rules) == "Sci-Fi"
    assert canonical_genre("Musical", rules) == "Music"
    assert canonical_genre("TV Movie", rules) is None
    lists, vocabulary = apply_rules([["Drama", "Musical"], ["Music", "Foreign"], ["Drama", "Western"],
                                     ["Science Fiction", "Sci-Fi"], ["Sci-Fi"]], rules)
    assert vocabulary == ["Drama", "Music", "Other", "Sci-Fi"]
    assert lists == [["Drama", "Music"], ["Music"], ["Drama", "Other"], ["Sci-Fi"], ["Sci-Fi"]]


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    from postergenre.config import Paths
    from tests.conftest import require_shared
    sample = require_shared()
    project = Paths.default(tmp_path_factory.mktemp("encode") / "project")
    labels = pd.read_csv(sample / "labels.csv", dtype=str).head(2000)
    folder = project.root.parent / "slice"
    folder.mkdir(parents=True)
    labels.to_csv(folder / "labels.csv", index=False)
    (folder / "images").symlink_to(sample / "images")
    get_data(folder, project, progress=False)
    clean(project, progress=False)
    frames = encode(project)
    return project, frames, labels


def test_split_is_disjoint_complete_and_stratified(encoded):
    project, frames, labels = encoded
    ids = [set(frames[s].id) for s in ("train", "val", "test")]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert set.union(*ids) == set(labels.id)
    sizes = np.array([len(frames[s]) for s in ("train", "val", "test")]) / len(labels)
    assert np.allclose(sizes, [0.70, 0.15, 0.15], atol=0.01)
    vocabulary = json.loads(project.genres_json.read_text())["genres"]
    whole = pd.concat(frames.values())[vocabulary].mean()
    for s in ("train", "val", "test"):
        share = frames[s][vocabulary].mean()
        frequent = whole > 0.05
        assert (abs(share - whole)[frequent] / whole[frequent] < 0.15).all(), s


def test_multi_hot_matches_genres(encoded):
    project, frames, _ = encoded
    splits, vocabulary = load_splits(project)
    for frame in splits.values():
        rebuilt = frame[vocabulary].apply(lambda r: "|".join(g for g in vocabulary if r[g]), axis=1)
        assert (rebuilt == frame.genres.map(lambda g: "|".join(sorted(g.split("|"))))).all()
    assert list(splits["train"].columns[:5]) == ["id", "title", "year", "genres", "poster_path"]


def test_outputs_and_figures_are_written(encoded):
    project, _, _ = encoded
    meta = json.loads(project.genres_json.read_text())
    assert meta["sizes"]["train"] > meta["sizes"]["val"] > 0 and len(meta["data_hash"]) == 16
    for name in ("genre_frequency.png", "genres_per_poster.png", "genre_cooccurrence.png"):
        assert (project.figures / name).stat().st_size > 10_000


def test_same_seed_same_split_and_rare_genre_warning(encoded, capsys):
    project, frames, _ = encoded
    again = encode(project, split=SplitConfig(seed=42), figures=False)
    assert again["test"].id.tolist() == frames["test"].id.tolist()
    encode(project, rules=VocabularyRules(min_count=1), figures=False)
    out = capsys.readouterr().out
    assert "warning: genre 'History' has only" in out


@pytest.mark.shared
def test_a_second_source_moves_no_poster_of_the_first_between_splits(small_folder, sample, tmp_path):
    from postergenre.config import Paths
    extra = pd.read_csv(sample / "labels.csv", dtype=str, keep_default_na=False).iloc[300:500].copy()
    extra["genres"] = extra.genres + "|War"  # a genre the first source lacks, on every poster of the second
    second = tmp_path / "second"
    second.mkdir()
    extra.to_csv(second / "labels.csv", index=False)
    (second / "images").symlink_to(sample / "images")
    alone, both = Paths.default(tmp_path / "alone"), Paths.default(tmp_path / "both")
    for paths, sources in ((alone, small_folder), (both, [small_folder, second])):
        get_data(sources, paths, progress=False)
        clean(paths, progress=False)
        encode(paths, figures=False)
    frames_alone, _ = load_splits(alone)
    frames_both, vocabulary = load_splits(both)
    assert "War" in vocabulary
    for split in ("train", "val", "test"):
        first = frames_both[split][frames_both[split].source == "small"]
        assert first.id.tolist() == frames_alone[split].id.tolist(), f"the first source's {split} split is kept"
    sizes = {s: int((frames_both[s].source == "second").sum()) for s in ("train", "val", "test")}
    assert sum(sizes.values()) == 200 and 130 <= sizes["train"] <= 150 and sizes["test"] >= 25, sizes
    from postergenre.config import REPO_ROOT, UserError
    from postergenre.evaluation.evaluate import evaluate
    model = Path(shutil.copytree(REPO_ROOT / "models" / "default", tmp_path / "model"))
    result = evaluate(model, paths=both, n_boot=10, figures=False, progress=False, source="second")
    assert result["set"] == "test_second" and result["posters_evaluated"] == sizes["test"]
    knows_war = "War" in json.loads((model / "genres.json").read_text())["genres"]
    assert ("War" in result["mapping"]["unknown_genres"]) != knows_war and (model / "eval_test_second.json").exists()
    merged = evaluate(model, paths=both, n_boot=10, figures=False, progress=False)
    assert set(merged["by_source"]) == {"test_second", "test_small"}, "each source of the test split on its own"
    assert merged["by_source"]["test_second"][model.name]["macro_ap"][0] == result["metrics"][model.name]["macro_ap"][0]
    assert all(any(k.startswith("baseline") for k in rows) for rows in merged["by_source"].values())
    with pytest.raises(UserError, match=r"no poster of source 'third' \(sources there: second, small\)"):
        evaluate(model, paths=both, n_boot=10, figures=False, progress=False, source="third")
    from postergenre.modelfolder.provenance import source_summary
    summary = source_summary([both.split_csv(s) for s in ("train", "val", "test")])
    assert {k: summary["small"][k] for k in ("train", "val", "test")} == {s: len(frames_alone[s]) for s in frames_alone}
    assert {k: summary["second"][k] for k in ("train", "val", "test")} == sizes and summary["small"]["hash"] != \
        summary["second"]["hash"], "the manifest names each source, its posters per split and its rows' hash"


def test_a_merged_bucket_under_the_minimum_is_dropped_only_when_asked():
    """Genres rarer than min_count go to Other; with drop_small_other, an Other that is itself rarer goes too."""
    from postergenre.config import VocabularyRules
    from postergenre.data.encode import apply_rules
    lists = [["Drama"]] * 30 + [["Drama", "Talk-Show"]] * 2 + [["Reality-TV"]] + [["Comedy"]] * 25
    kept, vocabulary = apply_rules(lists, VocabularyRules(min_count=20))
    assert vocabulary == ["Comedy", "Drama", "Other"] and kept[30] == ["Drama", "Other"]
    dropped, vocabulary = apply_rules(lists, VocabularyRules(min_count=20, drop_small_other=True))
    assert vocabulary == ["Comedy", "Drama"] and dropped[30] == ["Drama"] and dropped[32] == []
    enough = [["Talk-Show"]] * 12 + [["Reality-TV"]] * 12 + [["Drama"]] * 30  # two rare genres, 24 in Other
    assert apply_rules(enough, VocabularyRules(min_count=20, drop_small_other=True))[1] == ["Drama", "Other"]


# A training-only source (posters chosen by genre): it trains, and never sets an estimate.

def _slice(source: Path, folder: Path, rows: slice) -> Path:
    labels = pd.read_csv(source / "labels.csv", dtype=str, keep_default_na=False).iloc[rows]
    folder.mkdir(parents=True)
    labels.to_csv(folder / "labels.csv", index=False)
    (folder / "images").symlink_to(source / "images")
    return folder


@pytest.fixture(scope="module")
def with_and_without(tmp_path_factory):
    """The same population encoded alone and beside a slice of kaggle_posters_rare as a training-only source."""
    from postergenre.config import Paths
    from tests.conftest import require_shared
    sample = require_shared()
    rare_source = sample.parent / "kaggle_posters_rare"
    base = tmp_path_factory.mktemp("train_only")
    population = _slice(sample, base / "sample", slice(0, 800))
    rare = _slice(rare_source, base / "rare", slice(0, 300))
    projects = {}
    for name, extra in (("without", []), ("with", [rare])):
        project = Paths.default(base / name)
        get_data(population, project, progress=False, train_only=extra)
        clean(project, progress=False)
        encode(project, figures=False)
        projects[name] = project
    return projects, pd.read_csv(rare / "labels.csv", dtype=str)


def test_training_only_posters_enter_the_training_split_alone(with_and_without):
    projects, rare = with_and_without
    frames, _ = load_splits(projects["with"])
    alone, _ = load_splits(projects["without"])
    assert set(rare.id) <= set(frames["train"].id)
    for split in ("val", "test"):
        assert not set(rare.id) & set(frames[split].id)
        assert projects["with"].split_csv(split).read_bytes() == projects["without"].split_csv(split).read_bytes()
    assert set(frames["train"].id) == set(alone["train"].id) | set(rare.id)
    assert (frames["train"].train_only == 1).sum() == len(rare)


def test_the_prior_and_the_counts_are_the_populations(with_and_without):
    from postergenre.training.train import vocabulary_info
    projects, rare = with_and_without
    infos = {name: json.loads(p.genres_json.read_text()) for name, p in projects.items()}
    for key in ("genres", "sizes", "train_counts"):
        assert infos["with"][key] == infos["without"][key], key
    assert infos["with"]["train_only"]["posters"] == len(rare)
    assert infos["with"]["train_only"]["sources"] == {"rare": len(rare)}
    assert "train_only" not in infos["without"]
    priors = {}
    for name, project in projects.items():
        frames, vocabulary = load_splits(project)
        priors[name] = vocabulary_info(project, vocabulary, frames["train"])["train_prior"]
    assert priors["with"] == priors["without"]
    # the rare posters' mix is not the population's: a prior over the whole training split would differ
    frames, vocabulary = load_splits(projects["with"])
    assert not np.allclose(frames["train"][vocabulary].mean().to_numpy(), priors["with"], atol=1e-3)


def test_the_manifest_names_a_training_only_source_apart(with_and_without):
    from postergenre.data.encode import SPLITS
    from postergenre.modelfolder.provenance import source_summary
    projects, rare = with_and_without
    summary = source_summary([projects["with"].split_csv(s) for s in SPLITS])
    assert summary["rare"] == {"train": len(rare), "train_only": True, "hash": summary["rare"]["hash"]}
    assert "train_only" not in summary["sample"] and summary["sample"]["val"] > 0
