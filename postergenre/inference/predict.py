"""Stage 7: genres for any poster, as a table, CSV, JSON or lines for the terminal.

Posters may be JPEG, PNG or WebP, grayscale, CMYK or transparent, any size. A missing file or a non-image
gives one line naming it; the other posters are still predicted. The predicting itself is the Predictor's.
"""
from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import SHARED_SAMPLE, Paths, UserError, progress_bar
from ..data.io import (
    atomic_write_bytes,
    file_sha256,
    plain_cell,
    read_csv,
    read_json,
    spreadsheet_safe,
    write_json,
)
from ..modelfolder.layout import resolve_model
from .predictor import Predictions, load

if TYPE_CHECKING:  # pandas is imported where a CSV is read or written: a poster's line on a terminal needs none
    import pandas as pd

DEFAULT_MODEL = "default"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif")


def display_name(stem: str) -> str:
    """A file's name as a title: one Unicode form (NFC: a name saved decomposed, as macOS does, reads the same as
    its composed twin); the poster's path is kept as it is."""
    return unicodedata.normalize("NFC", stem)


def is_folder(path: str | Path) -> bool:
    """A folder of posters; False for a name the system cannot even look up (too long, say), which then fails as
    that one poster."""
    try:
        return Path(path).is_dir()
    except (OSError, ValueError):
        return False


def expand_inputs(inputs: list[str | Path]) -> list[dict]:
    """Posters named directly, every image in a folder, or the rows of a CSV with a poster_path column, as
    {"poster", "title"} rows; UserError when there is none."""
    rows = []
    for item in map(Path, inputs):
        if is_folder(item):
            rows += [{"poster": str(p), "title": display_name(p.stem)} for p in sorted(item.iterdir())
                     if p.suffix.lower() in IMAGE_SUFFIXES]
        elif item.suffix.lower() == ".csv":
            table = read_csv(item, ["poster_path"])
            titles = table.title if "title" in table else table.poster_path.map(lambda p: Path(p).stem)
            if "year" in table:
                titles = [f"{t} ({y})" if y else t for t, y in zip(titles, table.year)]
            rows += [{"poster": p, "title": t if p.strip() else f"{item}, row {n}"}  # row 1 is the header
                     for n, (p, t) in enumerate(zip(table.poster_path, titles), start=2)]
        else:
            rows.append({"poster": str(item), "title": display_name(item.stem)})
    if not rows:
        raise UserError(f"no posters found in {', '.join(map(str, inputs))}")
    return rows


def _as_rows(inputs) -> list[dict]:
    """{"poster", "title"} rows from expand_inputs' rows, a table with those columns, or what it expands."""
    if hasattr(inputs, "columns"):  # a DataFrame
        return [{"poster": p, "title": t} for p, t in zip(inputs.poster, inputs.title)]
    inputs = list(inputs)
    if inputs and all(isinstance(item, dict) for item in inputs):
        return inputs
    return expand_inputs(inputs)


CHUNK = 256  # posters predicted at a time: an interrupted run keeps every chunk it finished


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a prediction: `done` holds the posters finished, `total` how many there were."""

    def __init__(self, done: Predictions, total: int):
        super().__init__()
        self.done, self.total = done, total


def predict(inputs: list[str | Path] | list[dict] | pd.DataFrame, model: str | Path = DEFAULT_MODEL, top: int = 3,
            paths: Paths | None = None,
            progress: bool | None = None, adapt_prior: bool = False, prior=None,
            estimator: str | None = None, runtime: str = "litert", text: bool = True,
            skip: set[str] | None = None, find_poster: bool = True) -> Predictions:
    """inputs: poster files, folders and CSVs, expand_inputs' rows of them, or a table with poster and title
    columns; runtime: litert (model.tflite, no TensorFlow) or keras; text: fuse the words on the poster where the
    model has a text head; skip: posters already predicted (a resumed run), left out; find_poster: look for the
    poster in a photo of it.

    Posters go through the network CHUNK at a time; Ctrl-C or SIGTERM raises Interrupted with those finished. A run
    adapted to the posters' genre mix needs every poster's probabilities first, so it is predicted whole."""
    posters = _as_rows(inputs)
    if skip:
        posters = [row for row in posters if str(row["poster"]) not in skip]
        if not posters:
            return Predictions([])
    predictor = load(resolve_model(model, paths or Paths.default()), runtime, text=text, find_poster=find_poster)
    show = len(posters) > 20 if progress is None else progress

    def run(part: list[dict], **options) -> Predictions:
        return predictor.predict([row["poster"] for row in part], top=top, titles=[row["title"] for row in part],
                                 **options)

    if adapt_prior or prior is not None or len(posters) <= CHUNK:
        predictions = run(posters, progress=show, adapt_prior=adapt_prior, prior=prior, estimator=estimator)
    else:
        rows = []
        bar = progress_bar(total=len(posters), desc="predict", unit="poster", disable=not show)
        try:
            for start in range(0, len(posters), CHUNK):
                done = run(posters[start:start + CHUNK]).rows
                rows += done
                bar.update(len(done))
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM as the command line raises it (its __cause__ says)
            bar.close()
            raise Interrupted(Predictions(_mark_empty(rows)), len(posters)) from stop
        bar.close()
        predictions = Predictions(rows)
    predictions.rows = _mark_empty(predictions.rows)
    return predictions


def _mark_empty(rows: list[dict]) -> list[dict]:
    """A CSV row without a poster path says so (its title names the CSV and the row)."""
    for row in rows:
        if not str(row["poster"]).strip():
            row["error"] = f"{row['title']}: empty poster_path cell"
    return rows


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


def errors(rows: list[dict]) -> list[str]:
    """The error of each poster that could not be predicted."""
    return [row["error"] for row in rows if _failed(row)]


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


def csv_table(rows: list[dict] | pd.DataFrame, words: bool = False) -> pd.DataFrame:
    """The predictions as CSV cells: top as 'Drama:0.5962|Comedy:0.3100', above_threshold as 'Drama|Comedy' (by
    probability), p_<genre> columns; the words only when asked for."""
    import pandas as pd
    flat = rows.copy() if isinstance(rows, pd.DataFrame) else Predictions(list(rows)).table
    if "top" in flat:
        flat["top"] = flat["top"].map(lambda t: "|".join(f"{g}:{p:.4f}" for g, p in t) if isinstance(t, list) else "")
        flat["above_threshold"] = flat["above_threshold"].map(lambda t: "|".join(t) if isinstance(t, list) else "")
    if not words:
        flat = flat.drop(columns=[c for c in ("words", "text_note") if c in flat])
    return flat


def write_predictions(rows: list[dict] | pd.DataFrame, path: Path, as_json: bool = False, words: bool = False) -> Path:
    """The predictions into a file, atomically: JSON records or a spreadsheet-safe CSV (write_output's forms)."""
    write_output(rows, path, as_json, words)
    return Path(path)


def render_lines(rows: list[dict], words: bool = False) -> str:
    """The predictions as lines for a person, a poster a line (failed posters are left to stderr)."""
    return "".join(format_line(r, words) + "\n" for r in rows if not _failed(r))


def resume_record(output: Path) -> Path:
    """Beside an output an interrupted run wrote: the posters it holds, each with the SHA-256 of its file."""
    return Path(f"{output}.resume.json")


def _digest(poster: str) -> str:
    return file_sha256(Path(poster)) if Path(poster).is_file() else ""


def resumable(output: Path) -> tuple[list[dict], set[str]]:
    """The rows an interrupted run wrote to `output` (as written: CSV cells or JSON records) whose poster is still
    the same file (path and SHA-256), and those posters; a poster changed since is predicted again."""
    record = resume_record(output)
    if not record.exists() or not Path(output).exists():
        raise UserError(f"--resume: {output} has no record of an interrupted run ({record.name}); run without --resume")
    written = read_json(record)
    digests = written.get("posters") if isinstance(written, dict) else None
    if not isinstance(digests, dict) or not all(isinstance(v, str) for v in digests.values()):
        raise UserError(f"--resume: {record} is not the record of an interrupted run (its shape is wrong); delete "
                        "it and run without --resume")
    if str(output).endswith(".json"):
        rows = read_json(output)
    else:
        rows = read_csv(output, encoding_errors="surrogateescape").map(plain_cell).to_dict("records")
    if not isinstance(rows, list) or not all(isinstance(row, dict) and "poster" in row for row in rows):
        raise UserError(f"--resume: {output} holds no rows of predicted posters; run without --resume")
    same = {p for p, digest in digests.items() if _digest(p) == digest}
    kept = [row for row in rows if str(row["poster"]) in same]
    return kept, {str(row["poster"]) for row in kept}


def write_output(rows: list[dict] | pd.DataFrame, output: Path | None, as_json: bool, words: bool,
                 earlier: list[dict] = (), order: list[str] | None = None, interrupted: bool = False) -> str:
    """The predictions, with rows a resumed run kept (`earlier`, as written), in the inputs' `order`: into `output`
    (atomically; an interrupted run also records its posters' hashes beside it, for --resume) or returned as text.
    A run resumed after an interruption writes what one uninterrupted run would."""
    if hasattr(rows, "columns"):  # a DataFrame
        rows = rows.to_dict("records")
    cells = None if as_json else csv_table(rows, words)
    if as_json:
        written = [json_record(r) for r in rows]
    else:
        written = cells.astype(object).where(lambda f: f.notna(), "").to_dict("records")
    written = [*earlier, *written]
    if order is not None:
        position = {poster: i for i, poster in enumerate(order)}
        written.sort(key=lambda row: position.get(str(row["poster"]), len(position)))
    if as_json:
        text = json.dumps(written, indent=1) + "\n"
    else:
        import pandas as pd
        columns = list(dict.fromkeys(key for row in written for key in row)) if written else list(cells.columns)
        text = spreadsheet_safe(pd.DataFrame(written, columns=columns)).to_csv(index=False)
    if output is None:
        return text
    atomic_write_bytes(Path(output), text.encode("utf-8", "surrogateescape"))  # a name's own bytes, as on stdout
    record = resume_record(output)
    if interrupted:
        write_json({"posters": {str(row["poster"]): _digest(str(row["poster"])) for row in written}}, record)
    else:
        record.unlink(missing_ok=True)
    return ""


def poster_labels(paths: Paths, poster: str | Path) -> dict | None:
    """A poster's title and true genres where one of the project's splits holds it ({"title", "genres", "split"}),
    else None."""
    import pandas as pd

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
    import pandas as pd
    test = paths.split_csv("test")
    if test.exists():
        return str(pd.read_csv(test, usecols=["poster_path"]).poster_path[0])
    images = sorted((SHARED_SAMPLE / "images").glob("*.jpg"))
    if not images:
        raise UserError("no example poster: give POSTER a file")
    return str(images[0])
