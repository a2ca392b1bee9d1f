"""Hostile input (issue 19's cases): each gets one line naming the file and what is wrong, exit 2, and loses
nothing; the good posters given beside a bad one are still predicted."""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from postergenre.cli import main
from postergenre.config import REPO_ROOT, UserError
from postergenre.data.images import decode, open_rgb, to_rgb
from tests.conftest import real_posters

DEFAULT = REPO_ROOT / "models" / "default"
pytestmark = pytest.mark.shared


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(list(map(str, args)))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("target", ["/proc/nope/out.csv", "FILE/out.csv", "FOLDER", "/dev/full"])
def test_an_output_that_cannot_be_written_is_one_line_and_replaces_nothing(capsys, tmp_path, target):
    (tmp_path / "FILE").write_text("a file where a folder should be")
    (tmp_path / "FOLDER").mkdir()
    output = Path(target) if target.startswith("/") else tmp_path / target
    code, out, err = run(capsys, "predict", *real_posters(2), "--output", output)
    assert code == 2 and "Traceback" not in err, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("postergenre predict: error: ") and str(output) in line
    assert (tmp_path / "FILE").read_text() == "a file where a folder should be" and (tmp_path / "FOLDER").is_dir()
    assert not Path("/dev/full").is_file(), "the device is still a device"


def test_absurd_sides_are_refused_from_the_header_and_cost_the_others_nothing(capsys, tmp_path):
    strip = tmp_path / "strip.png"
    Image.new("L", (1_000_000, 1)).save(strip)  # a few KB on disk, a megapixel line once decoded
    code, out, err = run(capsys, "predict", strip, real_posters(1)[0], "--json")
    records = json.loads(out)
    assert code == 1 and "Traceback" not in err, "a poster failed: exit 1"
    assert "strip.png: refused: 1000000x1 pixels" in records[0]["error"]
    assert err.count("strip.png: refused") == 1, "its error once, on stderr"
    assert "error" not in records[1] and len(records[1]["labels"]) == 3


def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path):
    gray = np.asarray(open_rgb(real_posters(1)[0]).convert("L"), dtype=np.uint16)
    path = tmp_path / "poster16.png"
    Image.fromarray(gray * 257).save(path)  # 16-bit grayscale: 0..65535
    image = to_rgb(decode(path))
    assert image.mode == "RGB"
    assert np.abs(np.asarray(image, dtype=int)[..., 0] - gray).max() <= 1, "the same picture, at 8 bits"


def test_a_damaged_model_file_is_named_not_predicted(capsys, tmp_path):
    model = Path(shutil.copytree(DEFAULT, tmp_path / "damaged"))
    tflite = model / "model.tflite"
    data = bytearray(tflite.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 65536] = b"\xff" * 65536
    tflite.write_bytes(bytes(data))
    code, out, err = run(capsys, "predict", real_posters(1)[0], "--model", model, "--json")
    assert code == 2 and "Traceback" not in err and out == "", out
    assert str(tflite) in err.strip().splitlines()[-1]


@pytest.mark.parametrize("top", ["0", "-1", "x"])
def test_top_must_be_one_or_more(capsys, top):
    with pytest.raises(SystemExit) as stop:
        main(["predict", str(real_posters(1)[0]), "--top", top])
    assert stop.value.code == 2 and "argument --top" in capsys.readouterr().err


def test_a_mix_that_repeats_a_genre_is_refused(capsys, tmp_path):
    genres = json.loads((DEFAULT / "genres.json").read_text())["genres"]
    mix = tmp_path / "mix.csv"
    pd.DataFrame({"genre": genres + [genres[0].lower()], "share": [0.1] * (len(genres) + 1)}).to_csv(mix, index=False)
    posters = [str(p) for p in real_posters(1)]
    code, out, err = run(capsys, "predict", *posters, "--prior", mix)
    assert code == 2 and f"genre {genres[0]!r} is listed more than once (rows 2, {len(genres) + 2})" in err


def test_an_empty_poster_path_cell_names_its_row(capsys, tmp_path):
    table = tmp_path / "posters.csv"
    good = [str(p) for p in real_posters(2)]
    pd.DataFrame({"poster_path": [good[0], "", good[1]]}).to_csv(table, index=False)
    code, out, err = run(capsys, "predict", table, "--json", "--output", tmp_path / "out.json")
    records = json.loads((tmp_path / "out.json").read_text())
    assert code == 1 and out == "" and records[1]["error"] == f"{table}, row 3: empty poster_path cell"
    assert "error" not in records[0] and "error" not in records[2]
    assert err.splitlines()[0] == f"postergenre predict: 3 posters -> {tmp_path / 'out.json'}"


def test_evaluate_on_genres_the_model_does_not_know_says_which(tmp_path):
    from postergenre.evaluation.evaluate import evaluate
    folder = tmp_path / "documentaries"
    folder.mkdir()
    ids = [p.stem for p in real_posters(3)]
    pd.DataFrame({"id": ids, "title": ids, "year": "", "genres": "Adult|Game-Show"}).to_csv(folder / "labels.csv",
                                                                                          index=False)
    (folder / "images").symlink_to(real_posters(1)[0].parent)
    with pytest.raises(UserError, match=r"no poster has any of the model's genres \(found: Adult, Game-Show;"):
        evaluate(DEFAULT, folder, figures=False, progress=False)


def test_atomic_writes_never_replace_what_is_not_a_regular_file(tmp_path):
    from postergenre.data.io import write_json
    link = tmp_path / "link.json"
    os.symlink(tmp_path / "elsewhere.json", link)
    with pytest.raises(UserError, match="a symlink; refusing to write over it"):
        write_json({"a": 1}, link)
    assert not (tmp_path / "elsewhere.json").exists() and list(tmp_path.glob(".*tmp")) == []


def test_get_data_reports_every_bad_row_and_keeps_the_earlier_table(capsys, tmp_path):
    posters = real_posters(4)
    folder = tmp_path / "source"
    (folder / "images").mkdir(parents=True)
    for poster in posters[:3]:
        shutil.copy(poster, folder / "images" / poster.name)
    ids = [p.stem for p in posters]
    long_title = "A" * 10_000_000
    (folder / "labels.csv").write_text(
        "id,title,year,genres\n"
        f"{ids[0]},Good,2001,Drama\n"         # line 2
        f"{ids[1]},No genres,2002,\n"         # line 3
        f"{ids[2]},{long_title},2003,Comedy\n"  # line 4
        f"{ids[0]},Good again,2001,Horror\n"  # line 5: the same id with other genres
        f"{ids[3]},No image,2004,Drama\n")    # line 6: its poster is not in images/
    root = tmp_path / "project"
    code, out, err = run(capsys, "--root", root, "get-data", "--source", folder)
    assert code == 0 and "Traceback" not in err
    report = pd.read_csv(root / "data" / "raw" / "get_data_report.csv")
    assert sorted(zip(report.line, report.kind)) == [(3, "no genres"), (4, "long title"),
                                                     (5, "conflicting duplicate id"), (6, "no image")]
    conflict = report.problem[report.kind == "conflicting duplicate id"].iloc[0]
    assert "also on line 2 with genres 'Drama', here 'Horror'" in conflict
    assert "4 problem(s) in 4 row(s)" in out
    movies = pd.read_csv(root / "data" / "raw" / "movies.csv", dtype=str, keep_default_na=False)
    assert movies.id.tolist() == [f"tt{int(i[2:]):07d}" for i in (ids[0], ids[1], ids[2], ids[3])]
    assert movies.genres[0] == "Drama" and movies.title.str.len().max() == 300, "one row an id; the title cut"

    (folder / "labels.csv").write_text("id,title,year,genres\n" f"{ids[0]},Good,2001,Drama\n")
    code, out, err = run(capsys, "--root", root, "get-data", "--source", folder)
    assert code == 0 and f"kept as {root / 'data' / 'raw' / 'movies.previous.csv'}" in out
    assert len(pd.read_csv(root / "data" / "raw" / "movies.previous.csv")) == 4, "the earlier table is kept"


def test_a_byte_that_is_not_utf8_is_placed_by_line_and_column(capsys, tmp_path):
    folder = tmp_path / "source"
    (folder / "images").mkdir(parents=True)
    (folder / "labels.csv").write_bytes(b"id,title,year,genres\ntt0000001,Caf\xe9 society,2001,Drama\n")
    code, out, err = run(capsys, "--root", tmp_path / "project", "get-data", "--source", folder)
    assert code == 2 and "Traceback" not in err
    assert "at line 2, column 14 (byte 34 of the file)" in err.strip().splitlines()[-1]


@pytest.mark.xdist_group("processes")
def test_predict_prints_nothing_but_its_answer(tmp_path):
    import subprocess
    import sys
    poster = real_posters(1)[0]
    result = subprocess.run([sys.executable, "-m", "postergenre.cli", "predict", str(poster)], capture_output=True,
                            text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr  # no runtime INFO line, no log line
    assert result.stdout.startswith(poster.stem) and len(result.stdout.strip().splitlines()) == 1


# issue 42: no input loses a run, no output overwrites an input

@pytest.mark.parametrize("case", ["the list", "a poster", "a poster by another path"])
def test_an_output_that_is_an_input_is_refused_before_any_work(capsys, tmp_path, case):
    folder = tmp_path / "posters"
    folder.mkdir()
    for poster in real_posters(2):
        shutil.copy(poster, folder)
    listing = tmp_path / "list.csv"
    listing.write_text("poster_path\n" + "\n".join(str(p) for p in sorted(folder.iterdir())) + "\n")
    before = {p: p.read_bytes() for p in [listing, *folder.iterdir()]}
    poster = sorted(folder.iterdir())[0]
    inputs, output = {"the list": (listing, listing), "a poster": (folder, poster),
                      "a poster by another path": (listing, tmp_path / "posters" / ".." / "posters" / poster.name)}[case]
    code, out, err = run(capsys, "predict", inputs, "--output", output)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert "is an input" in err and "Traceback" not in err
    assert {p: p.read_bytes() for p in before} == before, "nothing replaced"


def test_a_fifo_a_huge_file_and_an_unreadable_one_fail_alone_with_words_on(capsys, tmp_path):
    folder = tmp_path / "posters"
    folder.mkdir()
    for poster in real_posters(2):
        shutil.copy(poster, folder)
    os.mkfifo(folder / "fifo.jpg")  # opening it would wait for a writer forever
    with open(folder / "big.jpg", "wb") as f:  # 10 GB, sparse: nothing of it may be read
        f.truncate(10 * 2**30)
    (folder / "folder.jpg").mkdir()
    (folder / "loop.jpg").symlink_to(folder / "loop.jpg")
    code, out, err = run(capsys, "predict", folder, "--json")
    records = {Path(r["poster"]).name: r for r in json.loads(out)}
    assert code == 1 and "Traceback" not in err and "internal error" not in err, err
    assert "not a regular file (a FIFO)" in records["fifo.jpg"]["error"]
    assert "10,240 MB is over the 300 MB limit" in records["big.jpg"]["error"]
    assert "not a regular file (a folder)" in records["folder.jpg"]["error"]
    assert "cannot be read" in records["loop.jpg"]["error"]
    good = [r for name, r in records.items() if name not in ("fifo.jpg", "big.jpg", "folder.jpg", "loop.jpg")]
    assert len(good) == 2 and all(len(r["labels"]) == 3 for r in good)


def test_a_poster_whose_bytes_cannot_be_read_costs_only_its_own_words(monkeypatch):
    from postergenre.text import ocr

    def unreadable(path, *args):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(ocr, "file_sha256", unreadable)
    assert ocr.poster_key(real_posters(1)[0]) is None  # no key: its words are read, not cached; no exception


def _cli(*args, stdout=None, input_shell: str | None = None):
    import subprocess
    import sys
    command = [sys.executable, "-m", "postergenre.cli", *map(str, args)]
    return subprocess.run(command, stdout=stdout if stdout is not None else subprocess.PIPE, stderr=subprocess.PIPE,
                          cwd=REPO_ROOT, timeout=300)


def test_a_full_disk_on_stdout_and_a_closed_pipe_are_the_environments_not_a_bug(tmp_path):
    import subprocess
    import sys
    with open("/dev/full", "w") as full:
        done = _cli("predict", real_posters(1)[0], "--no-text", stdout=full)
    err = done.stderr.decode()
    assert done.returncode == 1 and err.count("\n") == 1, err
    assert "standard output: No space left on device" in err and "bug" not in err
    # a reader that has gone before the results come (`| head` after its lines): quiet, 141 as a shell shows for
    # SIGPIPE
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "postergenre.cli", "predict", *map(str, real_posters(3)),
                               "--no-text"], stdout=write_end, stderr=subprocess.PIPE, cwd=REPO_ROOT, timeout=300)
    finally:
        os.close(write_end)
    err = done.stderr.decode()
    assert done.returncode == 141 and err == "", err


def test_a_resume_record_of_the_wrong_shape_and_a_name_too_long_are_one_line(capsys, tmp_path):
    output = tmp_path / "out.csv"
    output.write_text("poster,title\n")
    Path(f"{output}.resume.json").write_text('{"posters": [1, 2]}')
    code, out, err = run(capsys, "predict", real_posters(1)[0], "--output", output, "--resume")
    assert code == 2 and "is not the record of an interrupted run" in err and err.count("\n") == 1
    long_name = tmp_path / ("x" * 250 + ".csv")
    code, out, err = run(capsys, "predict", real_posters(1)[0], "--output", long_name)
    assert code == 2 and "bytes; this disk allows 255" in err and not long_name.exists()


def test_file_names_that_are_not_utf8_are_predicted_like_any_other(tmp_path):
    folder = os.fsencode(tmp_path / "posters")
    os.mkdir(folder)
    shutil.copy(real_posters(1)[0], folder + b"/caf\xe9.jpg")
    shutil.copy(real_posters(2)[1], folder + b"/ok.jpg")
    for args in ([], ["--json"], ["--output", tmp_path / "out.csv"], ["--no-text"]):
        done = _cli("predict", os.fsdecode(folder), *args)
        assert done.returncode == 0 and b"Traceback" not in done.stderr and b"error" not in done.stderr, done.stderr
    assert b"caf\xe9.jpg" in (tmp_path / "out.csv").read_bytes()  # the name's own bytes, as ls shows them
    one = _cli("predict", os.fsdecode(folder + b"/caf\xe9.jpg"))
    assert one.returncode == 0 and one.stdout.startswith(b"caf\xe9")


def test_a_flood_of_failed_posters_is_twenty_lines_and_a_count(capsys, tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    for n in range(60):
        (folder / f"{n:03d}.jpg").write_bytes(b"")
    code, out, err = run(capsys, "predict", folder, "--no-text")
    said = [line for line in err.splitlines() if line.startswith("postergenre predict:")]  # not the progress bar
    assert code == 1 and len(said) == 21, err
    assert "60 of 60 posters could not be predicted (40 more not shown: --verbose lists them all" in err
    assert out.count("not an image") + out.count("cannot decode") + out.count("empty") >= 60, "all in the CSV"
    code, out, err = run(capsys, "predict", folder, "--no-text", "--verbose")
    assert code == 1 and len([line for line in err.splitlines() if line.startswith("postergenre predict:")]) == 61


def test_two_unicode_forms_of_one_name_read_the_same_and_keep_their_paths(capsys, tmp_path):
    import unicodedata
    folder = tmp_path / "posters"
    folder.mkdir()
    names = [unicodedata.normalize(form, "Amélie") for form in ("NFC", "NFD")]
    for name, poster in zip(names, real_posters(2)):
        shutil.copy(poster, folder / f"{name}.jpg")
    code, out, err = run(capsys, "predict", folder, "--no-text", "--json")
    records = json.loads(out)
    assert code == 0 and [r["title"] for r in records] == ["Amélie", "Amélie"]
    assert {Path(r["poster"]).stem for r in records} == set(names), "both paths as they are on disk"


def test_a_full_disk_while_caching_words_and_a_300_character_name_are_not_bugs(capsys, monkeypatch, tmp_path):
    import errno

    from postergenre.text import ocr

    long_name = tmp_path / ("x" * 300 + ".jpg")
    code, out, err = run(capsys, "predict", long_name, real_posters(1)[0], "--no-text", "--json")
    assert code == 1 and "File name too long" in json.loads(out)[0]["error"] and "bug" not in err

    def full(self, entries):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(ocr.TextCache, "add", full)
    from postergenre.config import Paths
    from postergenre.data.clean import clean
    from postergenre.data.encode import encode
    from postergenre.data.get_data import get_data
    sample = real_posters(1)[0].parent.parent
    folder = tmp_path / "small"
    folder.mkdir()
    pd.read_csv(sample / "labels.csv", dtype=str).head(100).to_csv(folder / "labels.csv", index=False)
    (folder / "images").symlink_to(sample / "images")
    project = Paths.default(tmp_path / "project")
    get_data(folder, project, progress=False)
    clean(project, progress=False)
    encode(project, figures=False)
    capsys.readouterr()
    code, out, err = run(capsys, "--root", project.root, "read-text", "--no-progress")
    assert code == 1 and err.count("\n") == 1 and "No space left on device" in err and "bug" not in err, err
