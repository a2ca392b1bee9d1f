"""Stage 2: every reason a movie is dropped, odd image modes kept as RGB, inputs untouched."""
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from postergenre.config import CleanConfig, UserError
from postergenre.data.clean import clean
from postergenre.data.images import PosterError, open_rgb
from postergenre.data.io import file_sha256, write_csv
from tests.conftest import copy_posters


def save_mode(source, path, mode, fmt="PNG"):
    with Image.open(source) as image:
        converted = image.convert(mode)
        if mode == "RGBA":
            alpha = Image.new("L", converted.size, 128)
            converted.putalpha(alpha)
        converted.save(path, fmt)
    return path


@pytest.fixture
def messy(tmp_path, project):
    """movies.csv with one movie per kind of problem, and the expected reasons."""
    images = tmp_path / "in"
    good = copy_posters(images, 12)
    truncated = images / "truncated.jpg"
    truncated.write_bytes(good[0].read_bytes()[:3000])
    text = images / "text.jpg"
    text.write_text("<html>not an image</html>")
    tiny = images / "tiny.jpg"
    Image.new("RGB", (40, 60), "red").save(tiny)
    twin = images / "twin.jpg"
    shutil.copy(good[1], twin)
    modes = {"gray": save_mode(good[2], images / "gray.png", "L"),
             "cmyk": save_mode(good[3], images / "cmyk.jpg", "CMYK", "JPEG"),
             "palette": save_mode(good[4], images / "palette.png", "P"),
             "alpha": save_mode(good[5], images / "alpha.png", "RGBA")}
    rows = [
        ("tt0000001", "Comedy", good[0], ""),
        ("tt0000002", "Drama", good[1], ""),
        ("", "Drama", good[6], "missing id"),
        ("tt0000004", "", good[7], "missing genres"),
        ("tt0000005", "Drama", images / "gone.jpg", "missing poster"),
        ("tt0000001", "Horror", good[8], "duplicate id"),
        ("tt0000007", "Drama", truncated, "corrupt image"),
        ("tt0000008", "Drama", text, "not an image"),
        ("tt0000009", "Drama", tiny, "too small"),
        ("tt0000010", "Drama", twin, "duplicate poster"),
        ("tt0000011", "Drama", modes["gray"], ""),
        ("tt0000012", "Drama", modes["cmyk"], ""),
        ("tt0000013", "Drama", modes["palette"], ""),
        ("tt0000014", "Drama", modes["alpha"], ""),
    ]
    movies = pd.DataFrame([{"id": i, "title": f"t{n}", "year": "2000", "genres": g, "poster_path": str(p),
                            "source": "folder"} for n, (i, g, p, _) in enumerate(rows)])
    project.raw.mkdir(parents=True)
    write_csv(movies, project.movies_csv)
    return images, [r[3] for r in rows]


def test_every_reason_is_reported(messy, project):
    images, expected = messy
    before = {p.name: file_sha256(p) for p in images.iterdir()}
    kept, report = clean(project, progress=False)
    reasons = dict(zip(report.line - 2, report.reason))
    for row, reason in enumerate(expected):
        if reason:
            assert reasons[row].startswith(reason), (row, reasons.get(row))
        else:
            assert row not in reasons
    assert "tt0000002" in reasons[9]  # names the poster it duplicates
    assert len(kept) == expected.count("")
    on_disk = pd.read_csv(project.clean_report)
    assert on_disk.reason.tolist() == report.reason.tolist()
    assert {p.name: file_sha256(p) for p in images.iterdir()} == before  # inputs never changed


@pytest.mark.parametrize("name", ["gray.png", "cmyk.jpg", "palette.png", "alpha.png"])
def test_odd_modes_read_as_rgb(messy, name):
    images, _ = messy
    image = open_rgb(images / name)
    array = np.asarray(image.resize((150, 200)))
    assert image.mode == "RGB" and array.shape == (200, 150, 3) and array.dtype == np.uint8


def test_alpha_is_composited_on_white(tmp_path):
    path = tmp_path / "clear.png"
    Image.new("RGBA", (80, 80), (255, 0, 0, 0)).save(path)
    assert (np.asarray(open_rgb(path)) == 255).all()


def test_unreadable_posters_raise_named_errors(messy):
    images, _ = messy
    for name, message in [("truncated.jpg", "cannot decode"), ("text.jpg", "not an image"),
                          ("gone.jpg", "file not found")]:
        with pytest.raises(PosterError, match=f"{name}: {message}"):
            open_rgb(images / name)


def test_min_size_is_configurable(messy, project):
    kept, report = clean(project, CleanConfig(min_width=10, min_height=10), progress=False)
    assert not report.reason.str.startswith("too small").any()


def test_nothing_left_is_an_error(tmp_path, project):
    project.raw.mkdir(parents=True)
    write_csv(pd.DataFrame([{"id": "", "title": "", "year": "", "genres": "", "poster_path": "", "source": "x"}]),
              project.movies_csv)
    with pytest.raises(UserError, match="no usable movies"):
        clean(project, progress=False)
    with pytest.raises(UserError, match="movies.csv: file not found"):
        clean(type(project).default(tmp_path / "elsewhere"), progress=False)
