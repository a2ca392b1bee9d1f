"""Stage 1: turn whatever the user points at into data/raw/movies.csv.

Sources, detected from the path:
  kaggle   the Kaggle MovieGenre.csv (latin-1, poster URLs): posters are downloaded
           (rows with only an IMDb link get their poster URL from the title page)
  folder   a poster folder: labels.csv (id,title,year,genres) + images/<id>.jpg
  onehot   a CSV with Id, Genre and one 0/1 column per genre, beside an image folder
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..config import DownloadConfig, Paths, UserError
from .download import download_posters, summary_line
from .io import file_sha256, read_csv, record_lines, write_csv

MOVIE_COLUMNS = ["id", "title", "year", "genres", "poster_path", "source", "train_only"]
KAGGLE_COLUMNS = ["imdbId", "Imdb Link", "Title", "Genre", "Poster"]
FOLDER_COLUMNS = ["id", "title", "year", "genres"]
ONEHOT_ID_COLUMNS = ["Id", "Genre"]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
_GENRE_TOKEN = re.compile(r"^[A-Za-z][A-Za-z '&/-]*$")
_YEAR = re.compile(r"[12]\d{3}", re.ASCII)
_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:/[IVX]+)?\)\s*$")


def one_line(text) -> str:
    """A cell's text on one line, runs of white space (line breaks, tabs) as one space: a carriage return left
    in a title would break the CSVs every later stage reads."""
    return " ".join(str(text).split())


def normalize_id(value) -> str:
    """'114709', 114709, 'tt114709' -> 'tt0114709'; raises ValueError otherwise."""
    text = str(value).strip().lower()
    match = re.fullmatch(r"(?:tt)?0*(\d{1,9})", text.split("/")[-1] if "/" in text else text, re.ASCII)
    if not match:
        raise ValueError(f"not an IMDb id: {value!r}")
    return "tt" + match.group(1).zfill(7)


def parse_genres(text: str) -> list[str]:
    """'Comedy|Horror|Sci-Fi' -> ['Comedy', 'Horror', 'Sci-Fi']; '' -> []; ValueError if malformed."""
    text = (text or "").strip()
    if not text:
        return []
    tokens = [t.strip() for t in text.split("|")]
    bad = [t for t in tokens if not _GENRE_TOKEN.match(t)]
    if bad:
        raise ValueError(f"unparseable genre(s) {bad!r} in {text!r}")
    return list(dict.fromkeys(tokens))


def split_title_year(title: str) -> tuple[str, str]:
    """'Toy Story (1995)' -> ('Toy Story', '1995')."""
    match = _TITLE_YEAR.match(title or "")
    return (match["title"], match["year"]) if match else ((title or "").strip(), "")


def read_movies(path: Path, hint: str = "") -> pd.DataFrame:
    """movies.csv or movies_clean.csv; one written before training-only sources existed has none."""
    movies = read_csv(path, MOVIE_COLUMNS[:-1], hint=hint)
    if "train_only" not in movies:
        movies["train_only"] = "0"
    return movies


def detect_source(path: Path) -> str:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_dir():
        if (path / "labels.csv").exists():
            return "folder"
        if _onehot_csv_in(path):
            return "onehot"
        raise UserError(f"{path}: unknown layout (expected labels.csv + images/, or a one-hot CSV "
                        "with Id, Genre and 0/1 genre columns beside an image folder)")
    header = _csv_header(path)
    if all(c in header for c in KAGGLE_COLUMNS):
        return "kaggle"
    if all(c in header for c in ONEHOT_ID_COLUMNS):
        return "onehot"
    if all(c in header for c in FOLDER_COLUMNS):
        return "folder"
    raise UserError(f"{path}: unknown CSV layout (columns {', '.join(header) or 'none'}); expected the Kaggle "
                    f"MovieGenre.csv ({', '.join(KAGGLE_COLUMNS)}), labels.csv or a one-hot CSV (Id, Genre, ...)")


def _csv_header(path: Path) -> list[str]:
    for encoding in ("utf-8", "latin-1"):
        try:
            with open(path, encoding=encoding) as f:
                return [c.strip() for c in f.readline().strip().split(",")]
        except UnicodeDecodeError:
            continue
    raise UserError(f"{path}: cannot decode the header")


def _onehot_csv_in(folder: Path) -> Path | None:
    for csv in sorted(folder.glob("*.csv")):
        if all(c in _csv_header(csv) for c in ONEHOT_ID_COLUMNS):
            return csv
    return None


def _find_image_folder(base: Path, explicit: Path | None) -> Path:
    if explicit:
        if not Path(explicit).is_dir():
            raise UserError(f"{explicit}: image folder not found")
        return Path(explicit)
    for name in ("images", "Images", "posters", "Posters"):
        if (base / name).is_dir():
            return base / name
    raise UserError(f"{base}: no image folder (images/ or Images/) found; name one with --images")


def _image_for(folder: Path, movie_id: str, raw_id: str) -> str:
    for stem in dict.fromkeys([movie_id, raw_id]):
        for suffix in IMAGE_SUFFIXES:
            candidate = folder / f"{stem}{suffix}"
            if candidate.exists():
                return str(candidate.resolve())
    return ""


MAX_TITLE = 300  # characters kept of a title; a longer one (a 10 MB cell) is cut and reported
REPORT_COLUMNS = ["file", "line", "id", "kind", "problem"]


class _Rows:
    """Collects movie rows and the problems found while reading them: every problem is a row of the report."""

    def __init__(self, path: Path, kind: str):
        self.path, self.kind, self.movies, self.lines, self.problems = path, kind, [], [], []

    def problem(self, line: int, movie_id: str, kind: str, text: str) -> None:
        self.problems.append({"file": str(self.path), "line": line, "id": one_line(movie_id), "kind": kind,
                              "problem": one_line(text)})

    def add(self, line: int, raw_id, title, year, genres_text, poster_path="", genres_known: bool = True):
        """genres_known=False: the caller has reported the genres already (an empty string is not "no genres")."""
        try:
            movie_id = normalize_id(raw_id)
        except ValueError as exc:
            self.problem(line, str(raw_id)[:40], "bad id", f"{exc} (clean drops it)")
            movie_id = ""
        try:
            genres = "|".join(parse_genres(genres_text))
            if not genres and genres_known:
                self.problem(line, movie_id, "no genres", "no genres (clean drops it)")
        except ValueError as exc:
            self.problem(line, movie_id, "bad genres", f"{str(exc)[:200]} (clean drops it)")
            genres = ""
        title = one_line(title)
        year = one_line(year)
        if year and not _YEAR.fullmatch(year):
            self.problem(line, movie_id, "bad year", f"year {year[:20]!r} is not four digits: left empty")
            year = ""
        if len(title) > MAX_TITLE:
            self.problem(line, movie_id, "long title", f"a title of {len(title):,} characters, cut to {MAX_TITLE}")
            title = title[:MAX_TITLE]
        self.movies.append({"id": movie_id, "title": title, "year": year, "genres": genres,
                            "poster_path": poster_path, "source": self.kind, "train_only": 0})  # read_source names it
        self.lines.append(line)
        return movie_id

    def image(self, line: int, movie_id: str, folder: Path, raw_id: str) -> None:
        """The last row's poster in `folder`, or a problem saying none is there."""
        path = _image_for(folder, movie_id, raw_id)
        if not path:
            self.problem(line, movie_id, "no image", f"no image {folder / raw_id}.jpg (or .jpeg, .png, .webp) "
                                                     "(clean drops it)")
        self.movies[-1]["poster_path"] = path


def read_folder(path: Path, images: Path | None = None) -> _Rows:
    labels = path / "labels.csv" if path.is_dir() else path
    base = labels.parent
    df = read_csv(labels, FOLDER_COLUMNS)
    folder = _find_image_folder(base, images)
    rows = _Rows(labels, "folder")
    for line, r in zip(record_lines(labels, len(df)), df.itertuples(index=False)):
        title, year = (r.title, r.year) if r.year else split_title_year(r.title)
        movie_id = rows.add(line, r.id, title, year, r.genres)
        rows.image(line, movie_id, folder, str(r.id).strip())
    return rows


def read_onehot(path: Path, images: Path | None = None) -> _Rows:
    csv = _onehot_csv_in(path) if path.is_dir() else path
    df = read_csv(csv, ONEHOT_ID_COLUMNS)
    folder = _find_image_folder(csv.parent, images)
    genre_columns = [c for c in df.columns if c not in ("Id", "Genre", "Title", "title", "Year", "year")]
    if not genre_columns:
        raise UserError(f"{csv}: no 0/1 genre columns beside Id and Genre")
    rows = _Rows(csv, "onehot")
    for line, r in zip(record_lines(csv, len(df)), df.to_dict("records")):
        values = {g: str(r[g]).strip() for g in genre_columns}
        bad = {g: v for g, v in values.items() if v not in ("0", "1", "0.0", "1.0")}
        genres = "" if bad else "|".join(g for g, v in values.items() if v in ("1", "1.0"))
        title, year = split_title_year(str(r.get("Title", r.get("title", ""))))
        movie_id = rows.add(line, r["Id"], title, year, genres, genres_known=not bad)
        if bad:
            rows.problem(line, movie_id, "bad genres", "genre cells not 0/1: "
                         + ", ".join(f"{g}={v}" for g, v in bad.items()) + " (clean drops it)")
        rows.image(line, movie_id, folder, str(r["Id"]).strip())
    return rows


def read_kaggle(path: Path) -> tuple[_Rows, pd.DataFrame]:
    """The MovieGenre.csv rows, and the download jobs (id, url, imdb_link)."""
    df = read_csv(path, KAGGLE_COLUMNS, encoding="latin-1")
    rows = _Rows(path, "kaggle")
    jobs = []
    for line, r in zip(record_lines(path, len(df), "latin-1"), df.to_dict("records")):
        title, year = split_title_year(r["Title"])
        movie_id = rows.add(line, r["imdbId"], title, year, r["Genre"])
        if movie_id:
            jobs.append({"id": movie_id, "url": r["Poster"].strip(), "imdb_link": r["Imdb Link"].strip()})
    jobs = pd.DataFrame(jobs, columns=["id", "url", "imdb_link"]).drop_duplicates("id")
    return rows, jobs


def source_name(path: Path) -> str:
    """What movies.csv calls a source: its folder's name (a labels.csv is named by its folder), or the file's stem."""
    path = Path(path).resolve()
    return path.parent.name if path.is_file() and path.name == "labels.csv" else (path.name if path.is_dir()
                                                                                  else path.stem)


def read_source(source: Path, paths: Paths, images: Path | None, download: DownloadConfig | None,
                limit: int | None, progress: bool) -> _Rows:
    """One source's rows (a Kaggle CSV's posters downloaded), each row's `source` its name."""
    kind = detect_source(source)
    if kind == "kaggle":
        rows, jobs = read_kaggle(source)
        if limit:
            rows.movies, rows.lines = rows.movies[:limit], rows.lines[:limit]
            jobs = jobs[jobs.id.isin({m["id"] for m in rows.movies})]
        report = download_posters(jobs, paths.posters, paths.download_report, download, progress)
        print(summary_line(report) + f" (report: {paths.download_report})")
        fetched = set(report.loc[report.status.isin(["ok", "present"]), "id"])
        for movie in rows.movies:
            if movie["id"] in fetched:
                movie["poster_path"] = str((paths.posters / f"{movie['id']}.jpg").resolve())
    else:
        rows = read_folder(source, images) if kind == "folder" else read_onehot(source, images)
        if limit:
            rows.movies, rows.lines = rows.movies[:limit], rows.lines[:limit]
    name = source_name(source)
    for movie in rows.movies:
        movie["source"] = name
    if not rows.movies:
        raise UserError(f"{source}: no movies found")
    return rows


def first_of_each_id(sources: list[_Rows]) -> tuple[list[dict], list[dict]]:
    """The movies of every source, an id once: the first row that has it wins, in its source or an earlier one.
    Every later row for it is reported and dropped, never merged: an exact repeat, the same movie in two sources,
    or, with other genres, a conflict naming both."""
    movies, problems, first = [], [], {}
    for rows in sources:
        for movie, line in zip(rows.movies, rows.lines):
            if not movie["id"] or movie["id"] not in first:
                if movie["id"]:
                    first[movie["id"]] = (movie, line, rows)
                movies.append(movie)
                continue
            earlier, earlier_line, earlier_rows = first[movie["id"]]
            same = earlier["genres"] == movie["genres"]
            if earlier_rows is rows:
                kind = "duplicate id" if same else "conflicting duplicate id"
                text = f"repeats line {earlier_line}: dropped" if same else (
                    f"also on line {earlier_line} with genres {earlier['genres']!r}, here {movie['genres']!r}: "
                    "the first row is kept, this one dropped")
            else:
                kind = "in two sources" if same else "conflicting duplicate id"
                text = f"also in {earlier['source']}" + ("" if same else f" with genres {earlier['genres']!r}, "
                                                                         f"here {movie['genres']!r}") \
                    + f": the row of {earlier['source']} is kept, this one dropped"
            rows.problem(line, movie["id"], kind, text)
        problems += rows.problems
    return movies, problems


def film_key(movie: dict) -> str:
    return " ".join(movie["title"].casefold().split())


SHARED_BY = {"id": "the same id", "title": "the same title and year", "bytes": "byte-identical posters"}


def refuse_shared_films(train_only: list[_Rows], others: list[_Rows]) -> None:
    """Stop, naming the first film that a training-only source shares with another source (or with another
    training-only one): the same film in the training split and in an estimate would leak."""
    seen: dict[tuple, tuple[dict, _Rows, int]] = {}
    for rows in [*others, *train_only]:
        for movie, line in zip(rows.movies, rows.lines):
            path = movie["poster_path"]
            keys = [("id", movie["id"]), ("title", film_key(movie), movie["year"]) if movie["year"] else None,
                    ("bytes", file_sha256(Path(path)) if path and Path(path).is_file() else "")]
            for key in filter(None, keys):
                if not key[-1]:
                    continue
                if key in seen and seen[key][1] is not rows and (rows in train_only or seen[key][1] in train_only):
                    earlier, earlier_rows, earlier_line = seen[key]
                    raise UserError(f"{rows.path} line {line}: {movie['id']} {movie['title']!r} ({movie['year']}) "
                                    f"is {earlier['id']} {earlier['title']!r} ({earlier['year']}) of "
                                    f"{earlier_rows.path} line {earlier_line} ({SHARED_BY[key[0]]}): a "
                                    "training-only source must share no film with another source")
                seen.setdefault(key, (movie, rows, line))


def get_data(source: str | Path | list, paths: Paths | None = None, images: Path | None = None,
             download: DownloadConfig | None = None, limit: int | None = None,
             progress: bool = True, train_only: list | tuple = ()) -> pd.DataFrame:
    """Read one supported source, or several (merged, an id once), into data/raw/movies.csv; returns that table.
    limit: the first N movies of each source. train_only: sources whose posters only ever train (chosen by genre:
    their mix is no population), marked `train_only` = 1; one that shares a film with another source is refused."""
    paths = paths or Paths.default()
    sources = [Path(s) for s in (source if isinstance(source, (list, tuple)) else [source])]
    extra = [Path(s) for s in train_only]
    if not sources:
        raise UserError("no source given")
    names = [source_name(s) for s in sources + extra]
    if len(set(names)) < len(names):
        raise UserError(f"two sources have the same name ({', '.join(names)}): rename a folder, or name a "
                        "training-only source once")
    read = [read_source(s, paths, images, download, limit, progress) for s in sources]
    read_only = [read_source(s, paths, images, download, limit, progress) for s in extra]
    for rows in read_only:
        for movie in rows.movies:
            movie["train_only"] = 1
    if read_only:
        refuse_shared_films(read_only, read)
    merged, problems = first_of_each_id(read + read_only)
    movies = pd.DataFrame(merged, columns=MOVIE_COLUMNS)
    paths.raw.mkdir(parents=True, exist_ok=True)
    report = pd.DataFrame(problems, columns=REPORT_COLUMNS).sort_values(["file", "line"], kind="stable")
    write_csv(report, paths.get_data_report, for_people=True)
    previous = paths.movies_csv.with_name("movies.previous.csv")
    replaced = paths.movies_csv.exists()
    if replaced:
        paths.movies_csv.replace(previous)
    write_csv(movies, paths.movies_csv)
    if problems:
        counts = report.kind.value_counts()
        rows_with_problems = len(report[["file", "line"]].drop_duplicates())
        print(f"warning: {len(report)} problem(s) in {rows_with_problems} row(s): "
              + ", ".join(f"{kind} {n}" for kind, n in counts.items()) + f"; see {paths.get_data_report}")
    if replaced:
        print(f"replaced the earlier {paths.movies_csv.name}; it is kept as {previous}")
    counts = movies.source.value_counts()
    print(f"{len(movies)} movies from " + ", ".join(f"{name} ({rows.kind}, {counts.get(name, 0)})"
                                                    for name, rows in zip(names, read))
          + "".join(f", {name} (training only, {counts.get(name, 0)})" for name in names[len(read):])
          + f" -> {paths.movies_csv}")
    return movies
