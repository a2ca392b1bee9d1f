"""Hostile input as families (Hypothesis): generated poster files at `predict` and at the page, generated rows at
`get-data`. Whatever the input: exit 0 or 2, no traceback, one line naming the bad file or row, every good poster
still predicted, and nothing written outside the output asked for."""
import contextlib
import csv
import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from postergenre.cli import main
from tests.conftest import real_posters

pytestmark = [pytest.mark.shared, pytest.mark.slow]  # about 2 minutes for 60 examples each
EXAMPLES = settings(max_examples=int(__import__("os").environ.get("HYPOTHESIS_EXAMPLES", 60)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow], derandomize=True)
SUFFIXES = (".jpg", ".png", ".webp", ".gif", ".bmp", ".tif", ".jpeg")
MODES = ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I", "I;16", "F", "YCbCr")
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")


def run(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(map(str, args)))
    return code, out.getvalue(), err.getvalue()


@st.composite
def images(draw) -> bytes:
    """An image of any mode, size, bit depth and format Pillow can write (sizes up to extreme aspect ratios)."""
    mode, fmt = draw(st.sampled_from(MODES)), draw(st.sampled_from(FORMATS))
    width = draw(st.integers(1, 300))
    height = draw(st.one_of(st.integers(1, 300), st.just(width * 25)))  # now and then sides 25:1 apart
    seed = draw(st.integers(0, 2**16))
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB")
    try:
        image = image.convert(mode) if mode not in ("I;16", "I", "F") else \
            Image.fromarray((pixels[..., 0].astype(np.uint16) * 257), "I;16").convert(mode)
        buffer = io.BytesIO()
        image.save(buffer, fmt)
    except (OSError, ValueError, KeyError):
        assume(False)  # a mode this format cannot hold
    return buffer.getvalue()


@st.composite
def damaged_posters(draw) -> bytes:
    """A real poster truncated, or with bytes overwritten."""
    data = bytearray(real_posters(8)[draw(st.integers(0, 7))].read_bytes())
    if draw(st.booleans()):
        return bytes(data[:draw(st.integers(0, len(data) - 1))])
    for _ in range(draw(st.integers(1, 20))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


poster_files = st.one_of(st.binary(max_size=3000), images(), damaged_posters())


def snapshot(folder: Path) -> dict:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


@EXAMPLES
@given(data=poster_files, suffix=st.sampled_from(SUFFIXES))
def test_predict_takes_any_file_and_still_predicts_the_good_ones(data, suffix):
    good = real_posters(1)[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        hostile = tmp / f"hostile{suffix}"
        hostile.write_bytes(data)
        before = {**snapshot(tmp), **snapshot(good.parent.parent)}
        output = tmp / "out" / "predictions.json"
        code, out, err = run("predict", hostile, good, "--json", "--output", output)
        assert code in (0, 1) and "Traceback" not in err, err
        records = json.loads(output.read_text())
        assert records[1]["poster"] == str(good) and "error" not in records[1] and len(records[1]["labels"]) == 3
        bad = records[0]
        assert ("error" in bad) != ("labels" in bad), "a poster is predicted or has its error, never both"
        assert code == int("error" in bad), "exit 1 exactly when a poster failed"
        if "error" in bad:
            assert bad["error"].startswith(str(hostile)) and "\n" not in bad["error"]
        else:
            assert all(np.isfinite(p) for p in bad["probabilities"].values())
        after = {**snapshot(tmp), **snapshot(good.parent.parent)}
        assert {k: v for k, v in after.items() if k != str(output)} == before, "only the output was written"


@EXAMPLES
@given(files=st.lists(st.tuples(poster_files, st.sampled_from(SUFFIXES)), min_size=1, max_size=4))
def test_the_page_answers_every_upload_with_a_row(files):
    from postergenre.app.serve import Page
    from postergenre.config import Paths
    good = real_posters(1)[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = []
        for i, (data, suffix) in enumerate(files):
            paths.append(tmp / f"upload{i}{suffix}")
            paths[-1].write_bytes(data)
        page = Page(Paths.default(), workspace=tmp / "workspace")
        table, csv, status = page.many("default", [*map(str, paths), str(good)])
        assert list(table.poster) == [p.name for p in paths] + [good.name], "a row per upload, in order"
        assert table.error.iloc[-1] == "" and table["top genres"].iloc[-1], "the good poster is predicted"
        for row in table.itertuples():
            assert bool(row.error) != bool(row._2), "predicted or an error naming the upload, never both"
            assert not row.error or row.error.startswith(row.poster)
        from postergenre.app.serve import markdown_escaped
        one = page.one("default", str(paths[0]), heatmaps=False)
        assert one[5].startswith(("Predicted with", f"**Error:** {markdown_escaped(paths[0].name)}")), one[5]
        page.close()


genre_text = st.one_of(st.just(""), st.sampled_from(["Drama", "Comedy|Drama", "Action|Sci-Fi", "Horror"]),
                       st.text(max_size=30))
rows = st.lists(st.fixed_dictionaries({
    "id": st.one_of(st.sampled_from(["tt0089869", "tt0089885", "89886", "tt0090068", "tt9999999"]), st.text(max_size=12)),
    "title": st.one_of(st.text(max_size=40), st.just("x" * 400)),
    "year": st.one_of(st.just(""), st.integers(1880, 2030).map(str), st.text(max_size=5)),
    "genres": genre_text}), min_size=1, max_size=12)


@EXAMPLES
@given(table=rows)
def test_get_data_takes_any_rows_and_accounts_for_each(table):
    sample = real_posters(1)[0].parent
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "source").mkdir()
        (tmp / "source" / "images").symlink_to(sample)
        labels = tmp / "source" / "labels.csv"  # quoted: a bare carriage return would be a line break of its own
        pd.DataFrame(table, columns=["id", "title", "year", "genres"]).to_csv(labels, index=False,
                                                                              quoting=csv.QUOTE_ALL)
        with open(labels, newline="") as f:
            lines = len(f.read().splitlines())
        before = snapshot(sample)
        code, out, err = run("--root", tmp / "project", "get-data", "--source", tmp / "source")
        assert code in (0, 2) and "Traceback" not in err, err
        assert snapshot(sample) == before, "the source is read, never written"
        if code == 2:
            assert len(err.strip().splitlines()) == 1 and "get-data: error:" in err
            return
        movies = pd.read_csv(tmp / "project" / "data" / "raw" / "movies.csv", dtype=str, keep_default_na=False)
        report = pd.read_csv(tmp / "project" / "data" / "raw" / "get_data_report.csv", dtype=str,
                             keep_default_na=False)
        ids = movies.id[movies.id != ""]
        assert ids.is_unique and ids.str.fullmatch(r"tt\d{7,}").all()
        assert movies.title.str.len().max() <= 300
        assert set(report.line.astype(int)) <= set(range(2, lines + 1)), "each problem names its row's line"
        dropped = report.kind.isin(["duplicate id", "conflicting duplicate id"]).sum()
        assert len(movies) + dropped == len(table), "every row is in movies.csv or reported as dropped"
        unusable = (movies.genres == "") | (movies.poster_path == "") | (movies.id == "")
        assert unusable.sum() <= report.line.nunique(), "every row clean will drop is in the report"
