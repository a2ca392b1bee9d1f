"""Stage 7: genres for any poster, as a table, CSV, JSON or lines for the terminal.

Posters may be JPEG, PNG or WebP, grayscale, CMYK or transparent, any size. A missing file or a non-image
gives one line naming it; the other posters are still predicted. The predicting itself is the Predictor's.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import SHARED_SAMPLE, Paths, UserError
from ..data.io import read_csv, write_csv
from .model_folder import resolve_model
from .predictor import Predictions, load

DEFAULT_MODEL = "default"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")


def expand_inputs(inputs: list[str | Path]) -> pd.DataFrame:
    """Posters named directly, every image in a folder, or the rows of a CSV with a poster_path column."""
    rows = []
    for item in map(Path, inputs):
        if item.is_dir():
            rows += [{"poster": str(p), "title": p.stem} for p in sorted(item.iterdir())
                     if p.suffix.lower() in IMAGE_SUFFIXES]
        elif item.suffix.lower() == ".csv":
            table = read_csv(item, ["poster_path"])
            titles = table.title if "title" in table else table.poster_path.map(lambda p: Path(p).stem)
            if "year" in table:
                titles = [f"{t} ({y})" if y else t for t, y in zip(titles, table.year)]
            rows += [{"poster": p, "title": t if p.strip() else f"{item}, row {n}"}  # row 1 is the header
                     for n, (p, t) in enumerate(zip(table.poster_path, titles), start=2)]
        else:
            rows.append({"poster": str(item), "title": item.stem})
    return pd.DataFrame(rows, columns=["poster", "title"])


def predict(inputs: list[str | Path], model: str | Path = DEFAULT_MODEL, top: int = 3, paths: Paths | None = None,
            progress: bool | None = None, adapt_prior: bool = False, prior=None,
            estimator: str | None = None, runtime: str = "litert", text: bool = True) -> Predictions:
    """runtime: litert (model.tflite, no TensorFlow) or keras; text: fuse the words on the poster where the model
    has a text head."""
    posters = expand_inputs(inputs)
    if posters.empty:
        raise UserError(f"no posters found in {', '.join(map(str, inputs))}")
    predictor = load(resolve_model(model, paths or Paths.default()), runtime, text=text)
    predictions = predictor.predict(posters, top=top, progress=len(posters) > 20 if progress is None else progress,
                                    adapt_prior=adapt_prior, prior=prior, estimator=estimator)
    empty = posters.poster.astype(str).str.strip().eq("").to_numpy()
    predictions.table.loc[empty, "error"] = posters.title[empty] + ": empty poster_path cell"
    return predictions


def format_line(row: dict) -> str:
    """'The Pianist (2002)   Drama (0.61), War (0.43), History (0.40)   [above thresholds: Drama, War]'"""
    if row.get("error"):
        return f"{row['title']}   error: {row['error']}"
    top = ", ".join(f"{g} ({p:.2f})" for g, p in row["top"])
    above = ", ".join(row["above_threshold"]) or "none"
    line = f"{row['title']}   {top}   [above thresholds: {above}]"
    if row.get("text_note"):
        return f"{line}   ({row['text_note']})"
    if row.get("words"):
        return f"{line}   words: {row['words'][:80]!r}"
    return line


def write_predictions(table: pd.DataFrame, path: Path) -> Path:
    flat = table.copy()
    if "top" in flat:
        flat["top"] = flat["top"].map(lambda t: "|".join(f"{g}:{p:.4f}" for g, p in t) if isinstance(t, list) else "")
        flat["above_threshold"] = flat["above_threshold"].map(lambda t: "|".join(t) if isinstance(t, list) else "")
    return write_csv(flat, path)


def print_predictions(table: pd.DataFrame, as_json: bool = False, out=None) -> None:
    out = out or sys.stdout  # looked up now: a caller may have redirected it
    if as_json:
        records = [{k: v for k, v in row.items() if not (isinstance(v, float) and np.isnan(v))}
                   for row in table.to_dict("records")]
        out.write(json.dumps(records, indent=1) + "\n")
        return
    for row in table.to_dict("records"):
        out.write(format_line(row) + "\n")


def example_poster(paths: Paths) -> str:
    """A poster no model trained on: the first of the test split, else the first of the sample."""
    test = paths.split_csv("test")
    if test.exists():
        return str(pd.read_csv(test, usecols=["poster_path"]).poster_path[0])
    images = sorted((SHARED_SAMPLE / "images").glob("*.jpg"))
    if not images:
        raise UserError("no example poster: give POSTER a file")
    return str(images[0])
