"""Stage 3: genre vocabulary, multi-hot encoding and a multi-label stratified split."""
from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pandas as pd
from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit
from sklearn.preprocessing import MultiLabelBinarizer

from ..config import Paths, SplitConfig, UserError, VocabularyRules
from .figures import save_encode_figures
from .get_data import read_movies
from .io import frame_hash, read_csv, read_json, write_csv, write_json

SPLITS = ("train", "val", "test")
BASE_COLUMNS = ["id", "title", "year", "genres", "poster_path", "source", "train_only"]


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


def with_vocabulary(genre_lists: list[list[str]], vocabulary: list[str], rules: VocabularyRules) -> list[list[str]]:
    """Canonical genre lists mapped onto a vocabulary made from other posters: a genre it lacks is `other` (when
    the vocabulary has one) or left out."""
    known = set(vocabulary)
    mapped = [[g if g in known else rules.other for g in genres] for genres in genre_lists]
    return [list(dict.fromkeys(g for g in genres if g in known)) for genres in mapped]


def population(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows that may set an estimate (a prior, a baseline, a figure): all but the training-only sources'."""
    return frame[frame["train_only"].astype(int) == 0] if "train_only" in frame else frame


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
    """Read movies_clean.csv; write the split CSVs and genres.json; returns the split tables.

    The posters of training-only sources (train_only = 1) go to the training split and nowhere else; the vocabulary,
    the split of the other posters, the training counts (the prior) and the data figures are what they would be
    without them."""
    paths, rules, split = paths or Paths.default(), rules or VocabularyRules(), split or SplitConfig()
    movies = read_movies(paths.clean_csv, hint=" (run `postergenre clean` first)")
    movies["train_only"] = movies.train_only.astype(int)
    raw_lists = [g.split("|") for g in movies.genres]
    only = movies.train_only.to_numpy() == 1
    genre_lists, vocabulary = apply_rules([r for r, o in zip(raw_lists, only) if not o], rules)
    extra_lists = with_vocabulary(apply_rules([r for r, o in zip(raw_lists, only) if o],
                                              dataclasses.replace(rules, min_count=0))[0], vocabulary, rules)
    lists = iter(genre_lists), iter(extra_lists)
    genre_lists = [next(lists[int(o)]) for o in only]
    keep = [bool(g) for g in genre_lists]
    if not all(keep):
        print(f"warning: {keep.count(False)} movie(s) have only dropped genres and are left out")
    movies = movies[keep].reset_index(drop=True)
    raw_lists = [r for r, g in zip(raw_lists, genre_lists) if g]
    genre_lists = [g for g in genre_lists if g]
    if not vocabulary or movies.empty or not (movies.train_only == 0).any():
        raise UserError(f"{paths.clean_csv}: no genres left after the vocabulary rules"
                        + (" (every poster is from a training-only source)" if len(movies) else ""))
    binarizer = MultiLabelBinarizer(classes=vocabulary)
    labels = binarizer.fit_transform(genre_lists)
    table = pd.concat([movies[BASE_COLUMNS].assign(genres=["|".join(g) for g in genre_lists]),
                       pd.DataFrame(labels, columns=vocabulary)], axis=1)
    others = np.flatnonzero(table.train_only == 0)
    chosen = split_by_source(movies.source.iloc[others].reset_index(drop=True), [raw_lists[i] for i in others],
                             rules, split)
    rows = {name: others[indices] for name, indices in chosen.items()}
    rows["train"] = np.sort(np.concatenate([rows["train"], np.flatnonzero(table.train_only == 1)]))
    frames = {name: table.iloc[indices].reset_index(drop=True) for name, indices in rows.items()}
    paths.processed.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        write_csv(frame, paths.split_csv(name))
    counts = split_counts({s: population(f) for s, f in frames.items()}, vocabulary)
    extra = frames["train"][frames["train"].train_only == 1]
    info = {"genres": vocabulary, "rules": rules.__dict__, "split": split.__dict__,
            "sizes": {s: len(population(frames[s])) for s in SPLITS}, "train_counts": counts["train"].to_dict(),
            "data_hash": frame_hash(table)}
    if len(extra):
        info["train_only"] = {"posters": len(extra), "sources": extra.source.value_counts().to_dict(),
                              "counts": extra[vocabulary].sum().astype(int).to_dict()}
    write_json(info, paths.genres_json)
    print(f"encode: {len(vocabulary)} genres, " + ", ".join(f"{s} {len(population(frames[s]))}" for s in SPLITS)
          + (f"; and {len(extra)} training-only posters ({', '.join(info['train_only']['sources'])}) in train"
             if len(extra) else ""))
    print(counts.assign(**({"train only": extra[vocabulary].sum()} if len(extra) else {})).to_string())
    for genre, row in counts.iterrows():
        for s in SPLITS:
            if row[s] < split.min_positives_warning:
                print(f"warning: genre {genre!r} has only {row[s]} positive(s) in {s}")
    if figures:
        save_encode_figures(population(table), vocabulary, paths.figures)
    return frames


def training_counts(genres_info: dict) -> pd.DataFrame:
    """Each genre's training posters from a project's (or model folder's) genres.json: those that set estimates
    (`population`), those of training-only sources, and both (`all`)."""
    extra = (genres_info.get("train_only") or {}).get("counts", {})
    counts = pd.DataFrame({"population": {g: genres_info.get("train_counts", {}).get(g, 0)
                                          for g in genres_info["genres"]},
                           "train only": {g: extra.get(g, 0) for g in genres_info["genres"]}}).astype(int)
    return counts.assign(all=counts.sum(axis=1))


def train_only_counts(paths: Paths | None = None) -> pd.DataFrame:
    """The project's training_counts, the most posters first."""
    return training_counts(read_json((paths or Paths.default()).genres_json)).sort_values("all", ascending=False)


def load_splits(paths: Paths | None = None) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The split tables written by `encode`, with the genre vocabulary."""
    paths = paths or Paths.default()
    vocabulary = read_json(paths.genres_json)["genres"]
    frames = {}
    for s in SPLITS:
        frame = read_csv(paths.split_csv(s), BASE_COLUMNS[:-1] + vocabulary, hint=" (run `postergenre encode` first)")
        frame[vocabulary] = frame[vocabulary].astype(np.int8)
        frame.insert(BASE_COLUMNS.index("train_only"), "train_only",  # a split of before training-only sources: 0
                     frame.pop("train_only").astype(np.int8) if "train_only" in frame else np.int8(0))
        frames[s] = frame
    return frames, vocabulary
