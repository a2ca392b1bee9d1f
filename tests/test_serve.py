"""`postergenre serve` in a real browser: Debian's Chromium driven by Playwright, against a server on 127.0.0.1."""
import json
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from postergenre.app.serve import expand_uploads, read_upload
from postergenre.config import REPO_ROOT
from postergenre.data.images import PosterError
from postergenre.training.cluster import free_ports
from tests.conftest import real_posters

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = REPO_ROOT / "reports" / "serve.png"


@pytest.fixture(scope="module")
def server():
    real_posters(1)  # skips, saying why, without the shared posters
    port = free_ports(1)[0]
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "postergenre.cli", "serve", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"postergenre serve did not start:\n{process.stdout.read()[-3000:]}")
            time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(timeout=20)


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
    names = [name for name, _ in expand_uploads([str(archive), str(tmp_path / "notes.jpg")])]
    assert names == [f"folder/{p.name}" for p in real_posters(2)] + ["notes.jpg"]


@pytest.mark.browser
@pytest.mark.shared
@pytest.mark.xdist_group("processes")
def test_page_predicts_like_the_cli_and_keeps_serving_after_a_bad_upload(server, tmp_path):
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make test` installs Debian's chromium"
    from playwright.sync_api import expect, sync_playwright
    poster = real_posters(5)[4]
    expected = cli_prediction(poster)
    genre, probability = expected["top"][0]
    bad = tmp_path / "not_a_poster.jpg"
    bad.write_text("this is text, not a JPEG")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.goto(server)
        expect(page.locator("#model-summary")).to_contain_text("macro AP", timeout=30_000)

        def predict(path: Path):
            page.locator("#poster-upload input[type=file]").set_input_files(str(path))
            expect(page.locator("#poster-upload")).to_contain_text(path.name, timeout=30_000)
            page.click("#predict-one")

        predict(poster)
        expect(page.locator("#status-one")).to_contain_text("Predicted with", timeout=120_000)
        expect(page.locator("#top-genres")).to_contain_text(genre)
        expect(page.locator("#top-genres")).to_contain_text(f"{round(probability * 100)}%")
        expect(page.locator("#gradcam img").first).to_be_visible(timeout=60_000)
        assert page.locator("#gradcam img").first.evaluate("img => img.complete && img.naturalWidth > 0")
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        page.locator("#poster-upload button[aria-label='Clear']").first.click()
        predict(bad)
        expect(page.locator("#status-one")).to_contain_text("not_a_poster.jpg: not an image", timeout=60_000)

        page.locator("#poster-upload button[aria-label='Clear']").first.click()
        predict(poster)
        expect(page.locator("#status-one")).to_contain_text("Predicted with", timeout=60_000)
        expect(page.locator("#top-genres")).to_contain_text(genre)
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
    table, csv, status = Page(Paths.default()).many("default", [str(archive), str(tmp_path / "broken.jpg")],
                                                         adapt=True)
    assert list(table.poster) == [p.name for p in real_posters(3)] + ["broken.jpg"]
    assert table["top genres"].iloc[:3].str.contains(r"\(0\.\d\d\)").all() and table.error.iloc[:3].eq("").all()
    assert "broken.jpg: cannot decode" in table.error.iloc[3]
    assert "4 posters, 1 could not be read" in status and "Under 50 posters" in status
    written = __import__("pandas").read_csv(csv)
    assert len(written) == 4 and {"top", "above_threshold", "error"} <= set(written.columns)
