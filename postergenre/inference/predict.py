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


def format_line(row: dict, words: bool = False) -> str:
    """'The Pianist (2002)   Drama 0.61, War 0.43, History 0.40   above thresholds: Drama, War' (genres by
    probability); words: the words read, labelled as such. A failed poster has no line (its error goes to stderr)."""
    top = ", ".join(f"{g} {p:.2f}" for g, p in row["top"])
    line = f"{row['title']}   {top}   above thresholds: {', '.join(row['above_threshold']) or 'none'}"
    if words and row.get("text_note"):
        return f"{line}   ({row['text_note']})"
    if words and row.get("words"):
        return f"{line}   words read: {' '.join(row['words'].split())[:80]!r}"
    return line


def _failed(row: dict) -> bool:
    return isinstance(row.get("error"), str) and row["error"] != ""


def json_record(row: dict, words: bool = True) -> dict:
    """One poster in the shape of a Hugging Face pipeline's output: its top genres as [{"label", "score"}], the
    genres above their thresholds the same way (by probability), every genre's probability in `probabilities`;
    a field that does not apply is left out (`error` only for a poster that failed, `words` only where read)."""
    record = {"poster": str(row["poster"]), "title": row["title"]}
    if _failed(row):
        return {**record, "error": row["error"]}
    probabilities = {k[2:]: v for k, v in row.items() if k.startswith("p_")}
    record["labels"] = [{"label": g, "score": p} for g, p in row["top"]]
    record["above_threshold"] = [{"label": g, "score": probabilities[g]} for g in row["above_threshold"]]
    record["probabilities"] = probabilities
    if words and isinstance(row.get("words"), str):
        record["words"] = row["words"]
        if row.get("text_note"):
            record["text_note"] = row["text_note"]
    return record


def csv_table(table: pd.DataFrame, words: bool = False) -> pd.DataFrame:
    """The table as CSV cells: top as 'Drama:0.5962|Comedy:0.3100', above_threshold as 'Drama|Comedy' (by
    probability), p_<genre> columns; the words only when asked for."""
    flat = table.copy()
    if "top" in flat:
        flat["top"] = flat["top"].map(lambda t: "|".join(f"{g}:{p:.4f}" for g, p in t) if isinstance(t, list) else "")
        flat["above_threshold"] = flat["above_threshold"].map(lambda t: "|".join(t) if isinstance(t, list) else "")
    if not words:
        flat = flat.drop(columns=[c for c in ("words", "text_note") if c in flat])
    return flat


def write_predictions(table: pd.DataFrame, path: Path, as_json: bool = False, words: bool = False) -> Path:
    """The predictions into a file, atomically: JSON records or a CSV."""
    if as_json:
        from ..data.io import atomic_write_bytes
        atomic_write_bytes(Path(path), render(table, "json", words).encode())
        return Path(path)
    return write_csv(csv_table(table, words), path)


def render(table: pd.DataFrame, form: str, words: bool = False) -> str:
    """The predictions as text: 'lines' for a person (failed posters left to stderr), 'csv' or 'json'."""
    rows = table.to_dict("records")
    if form == "json":
        return json.dumps([json_record(r, words=True) for r in rows], indent=1) + "\n"
    if form == "csv":
        return csv_table(table, words).to_csv(index=False)
    return "".join(format_line(r, words) + "\n" for r in rows if not _failed(r))


def print_predictions(table: pd.DataFrame, as_json: bool = False, out=None, words: bool = False) -> None:
    out = out or sys.stdout  # looked up now: a caller may have redirected it
    out.write(render(table, "json" if as_json else "lines", words))


def poster_labels(paths: Paths, poster: str | Path) -> dict | None:
    """A poster's title and true genres where one of the project's splits holds it ({"title", "genres", "split"}),
    else None."""
    from ..data.encode import SPLITS
    for split in SPLITS:
        path = paths.split_csv(split)
        if not path.exists():
            continue
        table = pd.read_csv(path, usecols=lambda c: c in ("poster_path", "title", "year", "genres"))
        found = table[table.poster_path == str(poster)]
        if len(found):
            row = found.iloc[0]
            year = f" ({int(row.year)})" if "year" in row and pd.notna(row.year) else ""
            return {"title": f"{row.title}{year}", "genres": str(row.genres).replace("|", ", "), "split": split}
    return None


def example_poster(paths: Paths) -> str:
    """A poster no model trained on: the first of the test split, else the first of the sample."""
    test = paths.split_csv("test")
    if test.exists():
        return str(pd.read_csv(test, usecols=["poster_path"]).poster_path[0])
    images = sorted((SHARED_SAMPLE / "images").glob("*.jpg"))
    if not images:
        raise UserError("no example poster: give POSTER a file")
    return str(images[0])
