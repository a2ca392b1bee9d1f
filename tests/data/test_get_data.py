"""Stage 1: source layouts, id/title/genre parsing, and clear errors for bad input."""
import subprocess
from pathlib import Path
import sys

import pandas as pd
import pytest

from postergenre.config import UserError
from postergenre.data.get_data import detect_source, get_data, normalize_id, parse_genres, split_title_year


@pytest.mark.parametrize("raw,expected", [("114709", "tt0114709"), ("tt114709", "tt0114709"),
                                          ("tt0114709", "tt0114709"), (" 42 ", "tt0000042"),
                                          ("12345678", "tt12345678"),
                                          ("http://www.imdb.com/title/tt114709", "tt0114709")])
def test_normalize_id(raw, expected):
    assert normalize_id(raw) == expected


@pytest.mark.parametrize("raw", ["", "abc", "tt", "12a"])
def test_normalize_id_rejects(raw):
    with pytest.raises(ValueError):
        normalize_id(raw)


def test_parse_genres_and_title_year():
    assert parse_genres("Comedy|Horror|Sci-Fi") == ["Comedy", "Horror", "Sci-Fi"]
    assert parse_genres(" Drama | Drama ") == ["Drama"]
    assert parse_genres("") == []
    with pytest.raises(ValueError, match="unparseable"):
        parse_genres("Comedy|123")
    assert split_title_year("Toy Story (1995)") == ("Toy Story", "1995")
    assert split_title_year("Se7en (1995/I)") == ("Se7en", "1995")
    assert split_title_year("No Year") == ("No Year", "")


def test_folder_layout(small_folder, project):
    movies = get_data(small_folder, project)
    assert len(movies) == 300 and (movies.source == small_folder.name).all()
    assert movies.id.str.fullmatch(r"tt\d{7,}").all()
    assert movies.poster_path.map(lambda p: p.endswith(".jpg")).all()
    written = pd.read_csv(project.movies_csv, dtype=str, keep_default_na=False)
    assert list(written.columns) == ["id", "title", "year", "genres", "poster_path", "source", "train_only"]
    pd.testing.assert_frame_equal(written, movies.astype(str))


def test_onehot_layout(sample, tmp_path, project):
    labels = pd.read_csv(sample / "labels.csv", dtype=str).head(20)
    genres = ["Action", "Comedy", "Drama", "Horror"]
    table = pd.DataFrame({"Id": labels.id, "Genre": [str(g.split("|")) for g in labels.genres]})
    for g in genres:
        table[g] = labels.genres.str.split("|").map(lambda gs, g=g: str(int(g in gs)))
    table.loc[3, "Drama"] = "maybe"  # an unparseable cell: reported, not silently dropped
    folder = tmp_path / "av"
    folder.mkdir()
    table.to_csv(folder / "train.csv", index=False)
    (folder / "Images").symlink_to(sample / "images")
    assert detect_source(folder) == "onehot"
    movies = get_data(folder, project)
    assert (movies.source == "av").all() and movies.poster_path.ne("").all()
    expected = ["|".join(g for g in genres if table.at[i, g] == "1") for i in range(20) if i != 3]
    assert movies.genres.drop(index=3).tolist() == expected
    assert movies.genres[3] == ""
    report = pd.read_csv(project.get_data_report)
    assert report.line.tolist() == [5] and "Drama=maybe" in report.problem[0]


def test_unparseable_genres_are_reported(small_folder, project):
    labels = pd.read_csv(small_folder / "labels.csv", dtype=str)
    labels.loc[7, "genres"] = "Comedy|<b>"
    labels.to_csv(small_folder / "labels.csv", index=False)
    movies = get_data(small_folder, project)
    assert len(movies) == 300 and movies.genres[7] == ""
    report = pd.read_csv(project.get_data_report)
    assert report.line.tolist() == [9] and "<b>" in report.problem[0]


def test_bad_input_errors_name_the_file(tmp_path, project):
    missing_column = tmp_path / "labels.csv"
    missing_column.write_text("id,title,genres\ntt0000001,x,Drama\n")
    (tmp_path / "images").mkdir()
    with pytest.raises(UserError, match=r"unknown CSV layout"):
        get_data(missing_column, project)
    no_genre = tmp_path / "kaggle.csv"
    no_genre.write_text("imdbId,Imdb Link,Title,Genre\n1,x,y,z\n")
    with pytest.raises(UserError, match="unknown CSV layout"):
        get_data(no_genre, project)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match=f"{empty}: unknown layout"):
        get_data(empty, project)
    bad_folder = tmp_path / "bad"
    bad_folder.mkdir()
    (bad_folder / "labels.csv").write_text("id,title,genres,year\n")
    (bad_folder / "images").mkdir()
    with pytest.raises(UserError, match="no movies found"):
        get_data(bad_folder, project)


def test_folder_missing_column_and_bad_encoding(tmp_path, project):
    folder = tmp_path / "f"
    (folder / "images").mkdir(parents=True)
    (folder / "labels.csv").write_text("id,title,genre\ntt0000001,x,Drama\n")
    with pytest.raises(UserError, match=r"labels.csv: missing required column\(s\) year, genres"):
        get_data(folder, project)
    (folder / "labels.csv").write_bytes("id,title,year,genres\ntt1,Caf\u00e9,2001,Drama\n".encode("utf-16"))
    with pytest.raises(UserError, match=r"labels.csv: cannot decode as utf-8 \(invalid start byte at line 1, "
                                        r"column 1 \(byte 0 of the file\)\)"):
        get_data(folder, project)


def test_cli_prints_one_line_without_traceback(tmp_path):
    (tmp_path / "labels.csv").write_text("id,title,genre,year\n")
    result = subprocess.run([sys.executable, "-m", "postergenre.cli", "--root", str(tmp_path / "p"),
                             "get-data", "--source", str(tmp_path / "labels.csv")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path / "labels.csv") in lines[0], lines


def test_a_problem_names_the_line_its_row_starts_on(tmp_path, project):
    folder = tmp_path / "source"
    (folder / "images").mkdir(parents=True)
    (folder / "labels.csv").write_text('id,title,year,genres\ntt0000001,"A title\nover\nthree lines",2001,Drama\n'
                                       "tt0000002,Plain,2002,\n")
    get_data(folder, project)
    report = pd.read_csv(project.get_data_report)
    assert report.loc[report.kind == "no genres", "line"].tolist() == [5], "the second row starts on line 5"


def folder_source(folder, rows, posters):
    """A poster folder: labels.csv from (id, genres) rows, the images copied from real posters."""
    (folder / "images").mkdir(parents=True)
    for (movie_id, _), poster in zip(rows, posters):
        (folder / "images" / f"{movie_id}.jpg").write_bytes(poster.read_bytes())
    pd.DataFrame([{"id": i, "title": f"Film {i}", "year": "2001", "genres": g} for i, g in rows]).to_csv(
        folder / "labels.csv", index=False)
    return folder


def test_several_sources_are_merged_an_id_once_and_every_overlap_reported(tmp_path, project, capsys):
    from tests.conftest import real_posters
    posters = real_posters(6)
    first = folder_source(tmp_path / "first", [("tt0000001", "Drama"), ("tt0000002", "Comedy"),
                                               ("tt0000003", "Horror")], posters[:3])
    second = folder_source(tmp_path / "second", [("tt0000001", "Drama"), ("tt0000002", "Comedy|War"),
                                                 ("tt0000004", "Western")], posters[3:])
    movies = get_data([first, second], project)
    assert movies.id.tolist() == ["tt0000001", "tt0000002", "tt0000003", "tt0000004"]
    assert movies.source.tolist() == ["first", "first", "first", "second"], "each movie's source recorded"
    assert movies.genres[1] == "Comedy", "the first source wins; nothing merged"
    report = pd.read_csv(project.get_data_report)
    assert report[["line", "kind"]].values.tolist() == [[2, "in two sources"], [3, "conflicting duplicate id"]]
    assert (report.file == str(second / "labels.csv")).all()
    assert "also in first with genres 'Comedy', here 'Comedy|War': the row of first is kept" in report.problem[1]
    assert "first (folder, 3), second (folder, 1)" in capsys.readouterr().out
    for bad, message in ((tmp_path / "missing", "no such file or folder"), (tmp_path / "empty", "unknown layout")):
        (tmp_path / "empty").mkdir(exist_ok=True)
        with pytest.raises(UserError, match=f"{bad}: {message}"):
            get_data([first, bad], project)
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "labels.csv").write_text("id,title,genre,year\n")
    with pytest.raises(UserError, match=f"{wrong / 'labels.csv'}: unknown CSV layout|missing required column"):
        get_data([first, wrong], project)


def _folder(tmp_path: Path, name: str, labels: pd.DataFrame, images: dict[str, bytes]) -> Path:
    folder = tmp_path / name
    (folder / "images").mkdir(parents=True)
    labels.to_csv(folder / "labels.csv", index=False)
    for movie_id, data in images.items():
        (folder / "images" / f"{movie_id}.jpg").write_bytes(data)
    return folder


@pytest.mark.parametrize("overlap", ["id", "title and year", "bytes"])
def test_a_film_a_training_only_source_shares_is_refused_by_name(tmp_path, project, sample, overlap):
    labels = pd.read_csv(sample / "labels.csv", dtype=str, keep_default_na=False).head(6)
    posters = {r.id: (sample / "images" / f"{r.id}.jpg").read_bytes() for r in labels.itertuples()}
    population = _folder(tmp_path, "population", labels.head(3), {k: posters[k] for k in labels.id.head(3)})
    chosen = labels.tail(3).copy()
    first = labels.iloc[0]
    images = {k: posters[k] for k in chosen.id}
    if overlap == "id":
        chosen.iloc[0, chosen.columns.get_loc("id")] = first.id
        images[first.id] = posters[labels.id.iloc[3]]
    elif overlap == "title and year":
        chosen.iloc[0, chosen.columns.get_loc("title")] = f"  {first.title.upper()} "
        chosen.iloc[0, chosen.columns.get_loc("year")] = first.year
    else:
        images[chosen.id.iloc[0]] = posters[first.id]
    rare = _folder(tmp_path, "rare", chosen, images)
    with pytest.raises(UserError) as error:
        get_data(population, project, progress=False, train_only=[rare])
    message = str(error.value)
    assert "\n" not in message and first.id in message and "training-only" in message
    assert {"id": "the same id", "title and year": "the same title and year", "bytes": "byte-identical"}[overlap] \
        in message
    assert not project.movies_csv.exists()


def test_training_only_rows_are_marked(tmp_path, project, sample):
    labels = pd.read_csv(sample / "labels.csv", dtype=str, keep_default_na=False).head(8)
    posters = {r.id: (sample / "images" / f"{r.id}.jpg").read_bytes() for r in labels.itertuples()}
    population = _folder(tmp_path, "population", labels.head(5), {k: posters[k] for k in labels.id.head(5)})
    rare = _folder(tmp_path, "rare", labels.tail(3), {k: posters[k] for k in labels.id.tail(3)})
    movies = get_data(population, project, progress=False, train_only=[rare])
    assert movies.groupby("source").train_only.apply(set).to_dict() == {"population": {0}, "rare": {1}}
    with pytest.raises(UserError, match="same name"):
        get_data(population, project, progress=False, train_only=[population])
