"""Stage 3: genre vocabulary, multi-hot encoding and a multi-label stratified split."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit
from sklearn.preprocessing import MultiLabelBinarizer

from ..config import Paths, SplitConfig, UserError, VocabularyRules
from .figures import save_encode_figures
from .get_data import MOVIE_COLUMNS
from .io import frame_hash, read_csv, read_json, write_csv, write_json

SPLITS = ("train", "val", "test")
BASE_COLUMNS = ["id", "title", "year", "genres", "poster_path", "source"]


def canonical_genre(name: str, rules: VocabularyRules) -> str | None:
    """A raw genre name after synonyms and merges; None when it is dropped."""
    lookup = {k.lower(): v for k, v in rules.synonyms.items()}
    name = lookup.get(name.strip().lower(), name.strip())
    name = {k.lower(): v for k, v in rules.merge.items()}.get(name.lower(), name)
    return None if name.lower() in {d.lower() for d in rules.drop} else name


def apply_rules(genre_lists: list[list[str]], rules: VocabularyRules) -> tuple[list[list[str]], list[str]]:
    """Canonical genre lists and the vocabulary (rare genres folded into rules.other)."""
    canonical = [list(dict.fromkeys(g for g in (canonical_genre(x, rules) for x in genres) if g))
                 for genres in genre_lists]
    counts = Counter(g for genres in canonical for g in genres)
    rare = {g for g, n in counts.items() if n < rules.min_count}
    if rare:
        canonical = [list(dict.fromkeys(rules.other if g in rare else g for g in genres)) for genres in canonical]
        if rules.drop_small_other and sum(rules.other in genres for genres in canonical) < rules.min_count:
            canonical = [[g for g in genres if g != rules.other] for genres in canonical]
    vocabulary = sorted({g for genres in canonical for g in genres})
    return canonical, vocabulary


def stratified_split(labels: np.ndarray, config: SplitConfig) -> dict[str, np.ndarray]:
    """Row indices of train/val/test, stratified over all genres at once."""
    n = len(labels)
    if n < 10:
        raise UserError(f"too few movies to split ({n})")
    everything = np.arange(n)
    outer = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=config.test, random_state=config.seed)
    rest, test = next(outer.split(everything, labels))
    inner = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=config.val / (1 - config.test),
                                             random_state=config.seed)
    train, val = next(inner.split(rest, labels[rest]))
    return {"train": np.sort(rest[train]), "val": np.sort(rest[val]), "test": np.sort(test)}


def split_by_source(sources: pd.Series, raw_genre_lists: list[list[str]], rules: VocabularyRules,
                    config: SplitConfig) -> dict[str, np.ndarray]:
    """Row indices of train/val/test: each source split on its own, stratified over its own vocabulary, so a
    source's posters keep the split they had when it was the only one (adding a source moves none of them)."""
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    for rows in sources.groupby(sources, sort=False).indices.values():
        canonical, vocabulary = apply_rules([raw_genre_lists[i] for i in rows], rules)
        labels = MultiLabelBinarizer(classes=vocabulary).fit_transform(canonical)
        for name, chosen in stratified_split(labels, config).items():
            parts[name].append(rows[chosen])
    return {name: np.sort(np.concatenate(chosen)) for name, chosen in parts.items()}


def split_counts(frames: dict[str, pd.DataFrame], vocabulary: list[str]) -> pd.DataFrame:
    return pd.DataFrame({s: frames[s][vocabulary].sum() for s in SPLITS}).astype(int)


def encode(paths: Paths | None = None, rules: VocabularyRules | None = None,
           split: SplitConfig | None = None, figures: bool = True) -> dict[str, pd.DataFrame]:
    """Read movies_clean.csv; write the split CSVs and genres.json; returns the split tables."""
    paths, rules, split = paths or Paths.default(), rules or VocabularyRules(), split or SplitConfig()
    movies = read_csv(paths.clean_csv, MOVIE_COLUMNS, hint=" (run `postergenre clean` first)")
    raw_lists = [g.split("|") for g in movies.genres]
    genre_lists, vocabulary = apply_rules(raw_lists, rules)
    keep = [bool(g) for g in genre_lists]
    if not all(keep):
        print(f"warning: {keep.count(False)} movie(s) have only dropped genres and are left out")
    movies = movies[keep].reset_index(drop=True)
    raw_lists = [r for r, g in zip(raw_lists, genre_lists) if g]
    genre_lists = [g for g in genre_lists if g]
    if not vocabulary or movies.empty:
        raise UserError(f"{paths.clean_csv}: no genres left after the vocabulary rules")
    binarizer = MultiLabelBinarizer(classes=vocabulary)
    labels = binarizer.fit_transform(genre_lists)
    table = pd.concat([movies[BASE_COLUMNS].assign(genres=["|".join(g) for g in genre_lists]),
                       pd.DataFrame(labels, columns=vocabulary)], axis=1)
    frames = {name: table.iloc[rows].reset_index(drop=True)
              for name, rows in split_by_source(movies.source, raw_lists, rules, split).items()}
    paths.processed.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        write_csv(frame, paths.split_csv(name))
    counts = split_counts(frames, vocabulary)
    write_json({"genres": vocabulary, "rules": rules.__dict__, "split": split.__dict__,
                "sizes": {s: len(frames[s]) for s in SPLITS}, "train_counts": counts["train"].to_dict(),
                "data_hash": frame_hash(table)}, paths.genres_json)
    print(f"encode: {len(vocabulary)} genres, " + ", ".join(f"{s} {len(frames[s])}" for s in SPLITS))
    print(counts.to_string())
    for genre, row in counts.iterrows():
        for s in SPLITS:
            if row[s] < split.min_positives_warning:
                print(f"warning: genre {genre!r} has only {row[s]} positive(s) in {s}")
    if figures:
        save_encode_figures(table, vocabulary, paths.figures)
    return frames


def load_splits(paths: Paths | None = None) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The split tables written by `encode`, with the genre vocabulary."""
    paths = paths or Paths.default()
    vocabulary = read_json(paths.genres_json)["genres"]
    frames = {}
    for s in SPLITS:
        frame = read_csv(paths.split_csv(s), BASE_COLUMNS + vocabulary, hint=" (run `postergenre encode` first)")
        frame[vocabulary] = frame[vocabulary].astype(np.int8)
        frames[s] = frame
    return frames, vocabulary
