"""`postergenre serve` in a real browser: Debian's Chromium driven by Playwright, against a server on 127.0.0.1."""
import json
import re
import shutil
import struct
import subprocess
import sys
import time
import urllib.request
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from postergenre.app.serve import expand_uploads, read_upload
from postergenre.config import REPO_ROOT
from postergenre.data.images import PosterError
from postergenre.training.cluster import free_ports
from tests.conftest import real_posters

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = REPO_ROOT / "reports" / "screenshots" / "serve_page.jpg"  # ignored; `make screenshots` copies it to docs/images


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server on a project of its own: the shipped default model and a test split of six real posters (the
    page's examples). Yields (url, the project); on stop, the server's workspace must be gone."""
    posters = real_posters(6)  # skips, saying why, without the shared posters
    root = tmp_path_factory.mktemp("served")
    shutil.copytree(REPO_ROOT / "models" / "default", root / "models" / "default")
    (root / "data" / "processed").mkdir(parents=True)
    pd.DataFrame({"id": [p.stem for p in posters], "poster_path": list(map(str, posters))}).to_csv(
        root / "data" / "processed" / "test.csv", index=False)
    port = free_ports(1)[0]
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "postergenre.cli", "--root", str(root), "serve", "--port",
                                str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"postergenre serve did not start:\n{process.stdout.read()[-3000:]}")
            time.sleep(0.5)
    yield url, root
    process.terminate()
    output = process.communicate(timeout=30)[0]
    workspace = re.search(r"uploads and results kept in (\S+) until it stops", output)
    assert workspace and not Path(workspace[1]).exists(), f"the server left its files behind:\n{output[-2000:]}"
    assert "Traceback" not in output, output[-3000:]


def shown_name(path: Path) -> re.Pattern:
    """A file name as the upload box shows it: Gradio draws the stem and the suffix apart, sometimes with a space."""
    return re.compile(re.escape(path.stem) + r"\s*" + re.escape(path.suffix))


def cli_prediction(poster: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "postergenre.cli", "predict", "--json", str(poster)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]


@pytest.mark.shared
def test_bad_uploads_are_named_errors(tmp_path):
    (tmp_path / "notes.jpg").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(real_posters(1)[0].read_bytes()[:2000])
    big = tmp_path / "big.jpg"
    with open(big, "wb") as f:
        f.truncate(21 * 2**20)
    bomb = tmp_path / "bomb.png"
    Image.new("L", (10_000, 10_000)).save(bomb)  # 100 megapixels in a file of about 100 KB
    for path, reason in ((tmp_path / "notes.jpg", "not an image"), (tmp_path / "empty.png", "empty"),
                         (truncated, "cannot decode"), (big, "over the 20 MB limit"),
                         (bomb, "100 megapixels is over the 25 megapixel limit")):
        with pytest.raises(PosterError, match=reason):
            read_upload(path)
    archive = tmp_path / "posters.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for poster in real_posters(2):
            z.write(poster, f"folder/{poster.name}")
        z.writestr("readme.txt", "skipped: not an image name")
    extracted = tmp_path / "extracted"
    extracted.mkdir()
    names = [item.name for item in expand_uploads([str(archive), str(tmp_path / "notes.jpg")], extracted)]
    assert names == [f"folder/{p.name}" for p in real_posters(2)] + ["notes.jpg"]


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels and holds none: what a decompression bomb shows its reader first."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) \
        + chunk(b"IEND", b"")


@pytest.mark.shared
def test_hostile_zips_are_reported_per_member_and_never_extracted(tmp_path):
    inner = tmp_path / "inner.zip"
    with zipfile.ZipFile(inner, "w") as z:
        z.write(real_posters(1)[0], "nested.jpg")
    archive = tmp_path / "hostile.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(real_posters(1)[0], "good.jpg")
        z.write(inner, "inner.zip")
        with z.open("huge.png", "w", force_zip64=True) as member:  # 100 MB of zeros, about 100 KB compressed
            for _ in range(100):
                member.write(bytes(2**20))
    assert archive.stat().st_size < 2**20
    extracted = tmp_path / "extracted"
    extracted.mkdir()
    items = expand_uploads([str(archive)], extracted)
    assert [(i.name, bool(i.error)) for i in items] == [("good.jpg", False), ("inner.zip", True), ("huge.png", True)]
    assert "a zip inside a zip is not opened" in items[1].error
    assert "100 MB once extracted, over the 20 MB limit (not extracted)" in items[2].error
    assert [f.name for f in extracted.iterdir()] == ["00000.jpg"], "only the good poster was written"


@pytest.mark.shared
def test_many_posters_survive_a_bomb_and_leave_no_files_behind(tmp_path):
    from postergenre.app.serve import Page
    from postergenre.config import Paths
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(30_000, 30_000))  # 900 megapixels declared: Pillow's own bomb check raises
    archive = tmp_path / "posters.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for poster in real_posters(2):
            z.write(poster, poster.name)
    page = Page(Paths.default(), workspace=tmp_path / "workspace")
    table, csv, status = page.many("default", [str(bomb), str(archive)])
    assert list(table.poster) == ["bomb.png", *(p.name for p in real_posters(2))]
    assert "bomb.png: refused: Image size (900000000 pixels) exceeds limit" in table.error.iloc[0] and table.error.iloc[1:].eq("").all()
    left = sorted(str(f.relative_to(page.workspace)) for f in page.workspace.rglob("*") if f.is_file())
    assert left == [str(Path(csv).relative_to(page.workspace))], "the zip's posters are gone once the request ends"
    page.close()
    assert not page.workspace.exists()


@pytest.mark.browser
@pytest.mark.shared
@pytest.mark.xdist_group("processes")
def test_page_predicts_like_the_cli_and_keeps_serving_after_a_bad_upload(server, tmp_path):
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make test` installs Debian's chromium"
    from playwright.sync_api import expect, sync_playwright
    url, root = server
    poster = real_posters(5)[4]
    expected = cli_prediction(poster)
    genre, probability = expected["labels"][0]["label"], expected["labels"][0]["score"]
    bad = tmp_path / "not_a_poster.jpg"
    bad.write_text("this is text, not a JPEG")
    with sync_playwright() as playwright:  # every wait follows the page's state; the timeouts only bound them
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        page.goto(url)
        expect(page.locator("#model-summary")).to_contain_text("macro AP", timeout=60_000)

        def predict(path: Path):
            page.locator("#poster-upload input[type=file]").set_input_files(str(path))
            expect(page.locator("#poster-upload")).to_contain_text(shown_name(path), timeout=60_000)
            page.click("#predict-one")

        predict(poster)
        expect(page.locator("#status-one")).to_contain_text("Predicted with", timeout=180_000)
        expect(page.locator("#top-genres")).to_contain_text(genre)
        expect(page.locator("#top-genres")).to_contain_text(f"{round(probability * 100)}%")
        if expected.get("words"):  # a model with a text head: the words it read are on the page
            expect(page.locator("#words-read textarea")).to_have_value(expected["words"], timeout=60_000)
        shown = page.locator("#poster-shown img")
        expect(shown).to_be_visible(timeout=60_000)
        width, height = shown.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        original = Image.open(poster)
        assert abs(height / width - original.height / original.width) < 0.02, "the poster itself, its shape kept"
        overlays = page.locator("#gradcam img")
        expect(overlays).to_have_count(3, timeout=120_000)
        for i in range(3):
            expect(overlays.nth(i)).to_be_visible()
            ratio = overlays.nth(i).evaluate("img => img.complete && img.naturalHeight / img.naturalWidth")
            assert 1.4 < ratio < 1.55, f"overlay {i} keeps the poster's 2:3 shape (height/width {ratio})"
            shape = overlays.nth(i).bounding_box()
            assert shape["height"] > 1.3 * shape["width"], f"overlay {i} is drawn uncropped, not as a square"
        expect(page.locator("#examples")).to_be_visible()
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True, type="jpeg", quality=80)

        page.locator("#poster-upload button[aria-label='Clear']").first.click()
        predict(bad)
        expect(page.locator("#status-one")).to_contain_text("not_a_poster.jpg: not an image", timeout=120_000)

        page.locator("#poster-upload button[aria-label='Clear']").first.click()
        example = real_posters(6)[0]  # the first of the test split's examples
        page.locator("#examples").get_by_text(example.name).click()
        expect(page.locator("#poster-upload")).to_contain_text(shown_name(example), timeout=60_000)
        page.click("#predict-one")
        expect(page.locator("#status-one")).to_contain_text("Predicted with", timeout=120_000)
        expect(page.locator("#top-genres")).to_contain_text(cli_prediction(example)["labels"][0]["label"])
        browser.close()
    assert SCREENSHOT.stat().st_size > 10_000


@pytest.mark.shared
def test_many_posters_give_one_row_each_and_a_csv(tmp_path):
    from postergenre.app.serve import Page
    from postergenre.config import Paths
    archive = tmp_path / "posters.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for poster in real_posters(3):
            z.write(poster, poster.name)
    (tmp_path / "broken.jpg").write_bytes(real_posters(1)[0].read_bytes()[:1500])
    page = Page(Paths.default())  # the CSV lives in the page's workspace as long as the page does
    table, csv, status = page.many("default", [str(archive), str(tmp_path / "broken.jpg")], adapt=True)
    assert list(table.poster) == [p.name for p in real_posters(3)] + ["broken.jpg"]
    assert table["top genres"].iloc[:3].str.contains(r"\(0\.\d\d\)").all() and table.error.iloc[:3].eq("").all()
    assert "broken.jpg: cannot decode" in table.error.iloc[3]
    assert "4 posters, 1 could not be read" in status and "Under 50 posters" in status
    written = __import__("pandas").read_csv(csv)
    assert len(written) == 4 and {"top", "above_threshold", "error"} <= set(written.columns)


@pytest.mark.shared
def test_one_poster_shows_the_poster_and_every_genre_against_its_threshold(tmp_path):
    from postergenre.app.serve import Page
    from postergenre.config import Paths
    poster = real_posters(3)[2]
    page = Page(Paths.default(), workspace=tmp_path / "workspace")
    label, bars, overlays, above, shown, status, words, photo = page.one("default", str(poster), heatmaps=False)
    assert status == "Predicted with `default`." and overlays == [] and photo is None, "a poster file is taken whole"
    expected = cli_prediction(poster)
    assert above == ", ".join(entry["label"] for entry in expected["above_threshold"])
    assert max(label, key=label.get) == expected["labels"][0]["label"]
    if expected.get("words"):  # the shipped default has a text head: the page shows the words the CLI read
        assert words == expected["words"]
    else:
        assert "no words read" in words
    assert bars.count('class="genre-bar"') == len(label), "a bar per genre"
    assert bars.count("#2ca02c") == len(expected["above_threshold"]), "green exactly for the genres above"
    original = Image.open(poster)
    assert shown.shape[2] == 3 and abs(shown.shape[0] / shown.shape[1] - original.height / original.width) < 0.02


def photo_of_a_poster(poster: Path, target: Path) -> Path:
    """A plain photo of a poster: on a grey-beige table, margins around it, turned a little, a JPEG."""
    import cv2
    image = np.asarray(Image.open(poster).convert("RGB"), dtype=np.float32)
    height, width = image.shape[:2]
    canvas = (round(width * 1.6), round(height * 1.5))
    corners = np.float32([[0.25 * width, 0.2 * height], [1.3 * width, 0.27 * height], [1.28 * width, 1.26 * height],
                          [0.3 * width, 1.22 * height]])
    matrix = cv2.getPerspectiveTransform(np.float32([[0, 0], [width, 0], [width, height], [0, height]]), corners)
    warped = cv2.warpPerspective(image, matrix, canvas)
    mask = cv2.warpPerspective(np.ones((height, width), np.float32), matrix, canvas)[..., None]
    picture = warped * mask + np.float32([176, 168, 150]) * (1 - mask)
    Image.fromarray(picture.astype(np.uint8)).save(target, quality=90)
    return target


@pytest.mark.shared
def test_a_camera_photo_is_found_straightened_and_shown_and_the_benchmark_reads_the_answer(tmp_path):
    from postergenre.app.serve import Page
    from postergenre.config import Paths
    poster = real_posters(4)[3]
    photo = photo_of_a_poster(poster, tmp_path / "camera.jpg")
    page = Page(Paths.default(), workspace=tmp_path / "workspace")
    answer = page.one("default", None, heatmaps=False, camera=str(photo))
    label, bars, overlays, above, shown, status, words, outlined = answer
    assert "found in the photo (outlined) and straightened" in status, status
    original = Image.open(poster)
    assert abs(shown.shape[0] / shown.shape[1] - original.height / original.width) < 0.08, "the poster's own shape"
    picture = Image.open(photo)
    assert abs(outlined.shape[0] / outlined.shape[1] - picture.height / picture.width) < 0.02, "beside it, the photo"
    from postergenre.app.serve import shown as page_picture
    drawn = np.abs(outlined.astype(int) - page_picture(picture.convert("RGB"))).sum(axis=2) > 60
    assert drawn.mean() > 0.002, "with the poster found in it outlined"
    assert outlined[drawn][:, 1].mean() > outlined[drawn][:, [0, 2]].mean() + 40, "in green"
    whole = page.one("default", str(poster), heatmaps=False)
    assert "found in the photo" not in whole[5] and whole[7] is None, "a poster file is taken whole"
    untouched = page.one("default", None, heatmaps=False, camera=str(photo), find=False)
    assert "found in the photo" not in untouched[5] and untouched[7] is None, "the switch takes the photo whole"
    assert abs(untouched[4].shape[0] / untouched[4].shape[1] - picture.height / picture.width) < 0.02
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    from bench_serve import ONE_POSTER_OUTPUTS, answered
    assert len(answer) == len(ONE_POSTER_OUTPUTS) and answered(answer, gradcam=False)
    with pytest.raises(SystemExit, match="fix the benchmark"):
        answered(answer[:-1], gradcam=False)


@pytest.mark.shared
def test_the_cap_line_is_no_poster_and_file_names_stay_text(tmp_path, monkeypatch):
    from postergenre.app import serve
    from postergenre.app.serve import Page, markdown_escaped
    from postergenre.config import Paths
    monkeypatch.setattr(serve, "MAX_POSTERS_PER_REQUEST", 2)
    archive = tmp_path / "posters.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for poster in real_posters(3):
            z.write(poster, poster.name)
    page = Page(Paths.default(), workspace=tmp_path / "workspace", text=False)
    table, csv, status = page.many("default", [str(archive)])
    assert status.startswith("2 posters, 0 could not be read. More than 2 posters: the rest were not read."), status
    evil = tmp_path / "[click here](evil.html).jpg"
    evil.write_bytes(b"not an image")
    status = page.one("default", str(evil), heatmaps=False)[5]
    page.close()
    assert "](" not in status.replace("\\](", "") and "\\[click here\\]\\(evil\\.html\\)\\.jpg" in status
    assert markdown_escaped("*a* _b_ `c` <d>") == "\\*a\\* \\_b\\_ \\`c\\` \\<d\\>"
