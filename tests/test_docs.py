"""The documentation site: built strictly (a broken link or a page left out of the navigation fails), every test
the reliability page names exists, and the built site works in a real browser."""
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from postergenre.config import REPO_ROOT

MKDOCS = [sys.executable, "-m", "mkdocs", "build", "--strict"]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO_ROOT / "reports" / "screenshots"  # ignored; `make screenshots` refreshes the docs' copies


def build(root: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*MKDOCS, "-f", str(root / "mkdocs.yml"), "-d", str(site)], capture_output=True, text=True,
                          cwd=root, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    start = time.perf_counter()
    result = build(REPO_ROOT, site)
    print(f"mkdocs build --strict: {time.perf_counter() - start:.1f} s")
    assert result.returncode == 0, result.stderr[-3000:]
    return site


def test_the_site_builds_strictly_with_every_page(site):
    pages = {p.relative_to(site).parent.as_posix() for p in site.rglob("index.html")}
    for page in ("getting-started", "pipeline/predict", "results", "results/label-shift", "reliability", "api",
                 "changelog"):
        assert page in pages, page
    api = (site / "api" / "index.html").read_text()
    assert "def load" in api or "load(" in api and "Predictor" in api, "the API page documents the predictor"
    assert "Keep a Changelog" in (site / "changelog" / "index.html").read_text(), "CHANGELOG.md is the changelog page"


def test_the_architecture_page_is_drawn_from_the_code(site):
    """Every sub-package is a row with the rooms it imports today: an import the code has shows, one it lacks does
    not (the graph, not a typed list)."""
    import grimp
    page = (site / "architecture" / "index.html").read_text()
    rooms = sorted(grimp.build_graph("postergenre").find_children("postergenre"))
    for room in rooms:
        assert f"<code>{room.split('.')[1]}</code>" in page, room
    row = re.search(r"<tr>\s*<td><code>networks</code></td>(.*?)</tr>", page, re.S).group(1)
    cells = re.findall(r"<td>(.*?)</td>", row, re.S)
    assert cells[2] == "<code>config</code>", "networks imports config alone"
    row = re.search(r"<tr>\s*<td><code>app</code></td>(.*?)</tr>", page, re.S).group(1)
    assert "<code>inference</code>" in re.findall(r"<td>(.*?)</td>", row, re.S)[2]
    assert "Prediction on LiteRT never imports TensorFlow" in page


@pytest.mark.parametrize("damage", ["broken link", "page left out"])
def test_a_broken_link_or_a_page_left_out_fails_the_build(tmp_path, damage):
    root = tmp_path / "copy"
    root.mkdir()
    for name in ("mkdocs.yml", "CHANGELOG.md", "pyproject.toml"):
        shutil.copy(REPO_ROOT / name, root / name)
    shutil.copytree(REPO_ROOT / "docs", root / "docs", ignore=shutil.ignore_patterns("notebooks"))
    (root / "postergenre").symlink_to(REPO_ROOT / "postergenre")
    if damage == "broken link":
        with open(root / "docs" / "data.md", "a") as page:
            page.write("\nSee [the missing page](nowhere.md).\n")
    else:
        (root / "docs" / "orphan.md").write_text("# A page no navigation leads to\n")
    result = build(root, tmp_path / "site")
    assert result.returncode != 0
    assert ("nowhere.md" if damage == "broken link" else "orphan.md") in result.stderr


def test_every_test_the_reliability_page_names_exists():
    page = (REPO_ROOT / "docs" / "reliability.md").read_text()
    named = re.findall(r"`(tests/(?:\w+/)?test_\w+\.py)::(test_\w+)`", page)
    assert len(named) >= 20
    for file, test in named:
        assert re.search(rf"^def {test}\(", (REPO_ROOT / file).read_text(), re.M), f"{file}::{test} is gone"


@pytest.mark.browser
@pytest.mark.xdist_group("processes")
def test_the_built_site_works_in_a_browser(site):
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make test` installs Debian's chromium"
    from playwright.sync_api import expect, sync_playwright
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # the test's output is its assertions, not a request log
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"{url}/")
            screenshot = page.locator("img[src*='serve_page']").first
            expect(screenshot).to_be_visible(timeout=30_000)
            assert screenshot.evaluate("img => img.complete && img.naturalWidth") > 500, "the page's picture loads"
            page.screenshot(path=str(SCREENSHOTS / "site_home.jpg"), type="jpeg", quality=75)

            page.goto(f"{url}/results/")
            expect(page.locator("table").first).to_be_visible(timeout=30_000)
            assert page.locator("table").count() >= 3 and "constant guess" not in page.title()
            expect(page.locator("article")).to_contain_text("baseline: 3 most frequent genres")
            page.screenshot(path=str(SCREENSHOTS / "site_results.jpg"), type="jpeg", quality=75)

            query = page.locator("input[data-md-component='search-query']")  # mkdocs-material's search
            query.click()
            meta = page.locator(".md-search-result__meta")
            expect(meta).not_to_contain_text("Initializing", timeout=60_000)  # its index, built in a web worker
            query.press_sequentially("Documentary", delay=30)  # typed, as a person would: each key an input event
            results = page.locator(".md-search-result__item")
            expect(results.first).to_be_visible(timeout=60_000)
            assert results.count() >= 1
            expect(page.locator(".md-search-result")).to_contain_text("Documentary")
            browser.close()
    finally:
        server.shutdown()
