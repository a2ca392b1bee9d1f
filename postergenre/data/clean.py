"""Stage 2: drop what cannot be used, one report row per dropped movie with its reason.

Input files are only read, never changed or deleted.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from ..config import CleanConfig, Paths, UserError, progress_bar
from .get_data import read_movies
from .images import PosterError, decode
from .io import write_csv


def inspect_poster(path: str, config: CleanConfig) -> tuple[str, str]:
    """(problem or '', sha256 of the bytes) after a full decode of the file."""
    if not path or not os.path.isfile(path):
        return "missing poster", ""
    with open(path, "rb") as f:
        data = f.read()
    digest = hashlib.sha256(data).hexdigest()
    try:
        width, height = decode(data, path).size
    except PosterError as exc:
        reason = {"not_image": "not an image", "refused": f"refused image ({exc.detail})"}.get(exc.kind)
        return (reason or f"corrupt image ({exc.detail})"[:160]), digest
    if width < config.min_width or height < config.min_height:
        return f"too small ({width}x{height} < {config.min_width}x{config.min_height})", digest
    return "", digest


def clean(paths: Paths | None = None, config: CleanConfig | None = None, workers: int | None = None,
          progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read data/raw/movies.csv, write movies_clean.csv and clean_report.csv; returns both."""
    paths, config = paths or Paths.default(), config or CleanConfig()
    movies = read_movies(paths.movies_csv, hint=" (run `postergenre get-data` first)")
    dropped: dict[int, str] = {}
    for i, row in movies.iterrows():
        if not row.id.strip():
            dropped[i] = "missing id"
        elif not row.genres.strip():
            dropped[i] = "missing genres"
        elif not row.poster_path.strip():
            dropped[i] = "missing poster"
    duplicated = movies.id.duplicated(keep="first") & movies.id.ne("")
    for i in movies.index[duplicated]:
        dropped.setdefault(i, "duplicate id")

    candidates = [i for i in movies.index if i not in dropped]
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        results = list(progress_bar(pool.map(lambda i: inspect_poster(movies.at[i, "poster_path"], config), candidates),
                            total=len(candidates), desc="decode posters", unit="poster", disable=not progress))
    first_with_bytes: dict[str, str] = {}
    for i, (problem, digest) in zip(candidates, results):
        if problem:
            dropped[i] = problem
        elif digest in first_with_bytes:
            dropped[i] = f"duplicate poster (byte-identical to {first_with_bytes[digest]})"
        else:
            first_with_bytes[digest] = movies.at[i, "id"]

    kept = movies.drop(index=list(dropped)).reset_index(drop=True)
    report = movies.loc[sorted(dropped), ["id", "title", "poster_path"]].assign(
        line=[i + 2 for i in sorted(dropped)], reason=[dropped[i] for i in sorted(dropped)])
    report = report[["line", "id", "title", "poster_path", "reason"]]
    if kept.empty:
        raise UserError(f"{paths.movies_csv}: no usable movies left after cleaning "
                        f"({len(report)} dropped; see reasons in {paths.clean_report})")
    paths.interim.mkdir(parents=True, exist_ok=True)
    write_csv(report, paths.clean_report, for_people=True)
    write_csv(kept, paths.clean_csv)
    print(f"clean: kept {len(kept)} of {len(movies)} movies, dropped {len(report)} -> {paths.clean_csv}")
    if len(report):
        print(report.reason.str.replace(r" \(.*", "", regex=True).value_counts().to_string())
    return kept, report
