"""The downloader against a real local HTTP server that injects faults."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from postergenre.config import DownloadConfig
from postergenre.data.download import Downloader, poster_url_from_imdb_html
from postergenre.data.get_data import get_data
from tests.conftest import real_posters
from tests.poster_server import IMDB_PAGES, PosterServer

FAST = DownloadConfig(workers=8, timeout=1.0, retries=2, backoff=0.05)


def assert_only_valid_posters(folder: Path):
    for path in folder.iterdir():
        assert path.suffix == ".jpg", f"stray file {path}"
        with Image.open(path) as image:
            image.load()
    partial = folder.parent / f".{folder.name}.partial"
    assert not partial.exists() or not any(partial.iterdir())


@pytest.fixture
def server(sample):
    posters = {p.name: p for p in real_posters(40)}
    with PosterServer(posters, slow_s=2.5) as srv:
        yield srv


def jobs_for(server, routes: dict[str, str]) -> pd.DataFrame:
    names = sorted(server.posters)
    rows = [{"id": f"tt{9000000 + i:07d}", "url": f"{server.url}/{route}/{names[i]}", "imdb_link": ""}
            for i, route in enumerate(routes)]
    return pd.DataFrame(rows)


def test_each_fault_ends_with_the_right_status(server, tmp_path):
    routes = ["ok", "404", "flaky500", "slow", "truncated", "html", "reset", "empty"]
    jobs = jobs_for(server, routes)
    posters = tmp_path / "Posters"
    report = Downloader(posters, FAST).run(jobs, progress=False)
    status = dict(zip(report.url.str.split("/").str[3], report.status))
    assert status == {"ok": "ok", "404": "not_found", "flaky500": "ok", "slow": "timeout",
                      "truncated": "truncated", "html": "not_image", "reset": "ok", "empty": "empty"}
    codes = dict(zip(report.url.str.split("/").str[3], report.http_code))
    assert codes["404"] == 404 and codes["ok"] == 200
    # 404 is final: asked once; 500 and the reset were retried once each
    names = sorted(server.posters)
    assert server.hits[f"/404/{names[1]}"] == 1
    assert server.hits[f"/flaky500/{names[2]}"] == 2
    assert server.hits[f"/slow/{names[3]}"] == FAST.retries + 1
    assert sorted(p.name for p in posters.iterdir()) == sorted(
        f"{jobs.id[i]}.jpg" for i, r in enumerate(routes) if r in ("ok", "flaky500", "reset"))
    assert_only_valid_posters(posters)


def test_rerun_fetches_only_what_is_missing(server, tmp_path):
    jobs = jobs_for(server, ["ok"] * 10)
    posters = tmp_path / "Posters"
    first = Downloader(posters, FAST).run(jobs.iloc[:6], progress=False)
    assert (first.status == "ok").all()
    (posters / f"{jobs.id[0]}.jpg").write_bytes(b"garbage")  # a damaged poster is fetched again
    before = sum(server.hits.values())
    second = Downloader(posters, FAST).run(jobs, progress=False)
    assert sum(server.hits.values()) - before == 5
    assert second.set_index("id").status.to_dict() == {
        **{i: "present" for i in jobs.id[1:6]}, jobs.id[0]: "ok", **{i: "ok" for i in jobs.id[6:]}}
    assert_only_valid_posters(posters)


def test_user_agent_and_rate_limit(server, tmp_path):
    seen = []
    original = Downloader._session

    def spy(self):
        session = original(self)
        seen.append(session.headers["User-Agent"])
        return session

    config = DownloadConfig(workers=4, timeout=2, retries=0, rate_limit=20)
    downloader = Downloader(tmp_path / "Posters", config)
    downloader._session = spy.__get__(downloader)
    start = time.monotonic()
    report = downloader.run(jobs_for(server, ["ok"] * 11), progress=False)
    assert (report.status == "ok").all()
    assert time.monotonic() - start >= 0.5  # 11 requests at 20/s span at least 0.5 s
    assert set(seen) == {config.user_agent}


@pytest.mark.parametrize("shape", sorted(IMDB_PAGES))
def test_imdb_page_parser_reads_each_shape(shape):
    html = IMDB_PAGES[shape].format(url="https://img.example/p.jpg")
    assert poster_url_from_imdb_html(html) == "https://img.example/p.jpg"
    assert poster_url_from_imdb_html("<html><body>nothing</body></html>") is None


def kaggle_csv(path: Path, server: PosterServer, rows: list[tuple[str, str]]) -> Path:
    """A MovieGenre.csv (latin-1) whose rows point at the local server: (poster route, imdb route)."""
    names = sorted(server.posters)
    lines = []
    for i, (poster_route, imdb_route) in enumerate(rows):
        name = names[i % len(names)]
        poster = f"{server.url}/{poster_route}/{name}" if poster_route else ""
        imdb = f"{server.url}/imdb/{imdb_route}/{name}" if imdb_route else f"http://www.imdb.com/title/tt{100 + i}"
        lines.append({"imdbId": str(100 + i), "Imdb Link": imdb, "Title": f"Caf\u00e9 {i} (19{50 + i})",
                      "IMDB Score": "6.1", "Genre": "Comedy|Drama", "Poster": poster})
    pd.DataFrame(lines).to_csv(path, index=False, encoding="latin-1")
    return path


def test_get_data_from_kaggle_csv_with_imdb_pages(server, tmp_path, project):
    csv = kaggle_csv(tmp_path / "MovieGenre.csv", server,
                     [("ok", ""), ("404", ""), ("", "og"), ("", "jsonld"), ("", "div")])
    movies = get_data(csv, project, download=FAST, progress=False)
    assert list(movies.id) == [f"tt{100 + i:07d}" for i in range(5)]
    assert movies.title[0] == "Caf\u00e9 0" and movies.year[0] == "1950"
    has_poster = movies.poster_path.ne("")
    assert has_poster.tolist() == [True, False, True, True, True]
    report = pd.read_csv(project.download_report)
    assert report.set_index("id").status.to_dict()["tt0000101"] == "not_found"
    assert_only_valid_posters(project.posters)


@pytest.mark.slow
def test_sigkill_during_download_then_resume(sample, tmp_path):
    posters = {p.name: p for p in real_posters(120)}
    with PosterServer(posters, latency_s=0.15) as server:
        csv = kaggle_csv(tmp_path / "MovieGenre.csv", server, [("ok", "")] * 120)
        root = tmp_path / "project"
        cmd = [sys.executable, "-m", "postergenre.cli", "--root", str(root), "get-data", "--source", str(csv),
               "--workers", "4", "--no-progress"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        folder = root / "Posters"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not folder.exists() or len(list(folder.iterdir())) < 20):
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        done_before = len(list(folder.glob("*.jpg")))
        assert 20 <= done_before < 120, "the kill must land mid-download"
        assert_only_valid_posters(folder)
        hits_before = sum(server.hits.values())
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert len(list(folder.glob("*.jpg"))) == 120
        assert sum(server.hits.values()) - hits_before == 120 - done_before
        assert_only_valid_posters(folder)
        report = pd.read_csv(root / "data/raw/download_report.csv")
        assert report.status.isin(["ok", "present"]).all() and len(report) == 120
