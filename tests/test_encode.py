"""Stage 3: vocabulary rules, multi-hot encoding and the stratified split."""
import json

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
