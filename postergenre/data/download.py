"""Concurrent, resumable poster downloads, and poster URLs read from IMDb title pages.

A poster is written to a temporary file outside Posters/ and renamed into place
only after its bytes fully decode as an image, so a crash or a kill never leaves
a partial file behind and a re-run fetches only what is missing.
"""
from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import requests
from bs4 import BeautifulSoup

from ..config import DownloadConfig, progress_bar
from .images import decodes
from .io import write_csv

REPORT_COLUMNS = ["id", "url", "status", "http_code", "reason", "bytes"]


@dataclass
class Result:
    id: str
    url: str
    status: str          # ok | present | not_found | http_error | timeout | connection_error
                         # | truncated | empty | not_image | no_url
    http_code: int | None = None
    reason: str = ""
    bytes: int = 0


class _Transient(Exception):
    """A failure worth retrying (timeout, 5xx, reset, truncated body)."""

    def __init__(self, status: str, reason: str, http_code: int | None = None):
        super().__init__(reason)
        self.status, self.reason, self.http_code = status, reason, http_code


class RateLimiter:
    """At most `rate` requests per second over all threads."""

    def __init__(self, rate: float | None):
        self.interval = 1.0 / rate if rate else 0.0
        self.next_time = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_time)
            self.next_time = start + self.interval
        time.sleep(max(0.0, start - now))


def poster_url_from_imdb_html(html: str) -> str | None:
    """The poster URL of an IMDb title page: og:image, JSON-LD `image`, or the old div.poster img."""
    soup = BeautifulSoup(html, "html.parser")
    meta = soup.find("meta", attrs={"property": "og:image"}) or soup.find("meta", attrs={"name": "og:image"})
    if meta and meta.get("content"):
        return meta["content"].strip()
    for script in soup.find_all("script", attrs={"type": "application/ld+json"}):
        try:
            data = json.loads(script.string or "")
        except json.JSONDecodeError:
            continue
        for item in data if isinstance(data, list) else [data]:
            image = item.get("image") if isinstance(item, dict) else None
            if isinstance(image, dict):
                image = image.get("url") or image.get("contentUrl")
            if isinstance(image, str) and image.strip():
                return image.strip()
    img = soup.select_one("div.poster img")
    if img and img.get("src"):
        return img["src"].strip()
    return None


class Downloader:
    def __init__(self, posters_dir: Path, config: DownloadConfig | None = None):
        self.posters_dir = Path(posters_dir)
        self.partial_dir = self.posters_dir.parent / f".{self.posters_dir.name}.partial"
        self.config = config or DownloadConfig()
        self.limiter = RateLimiter(self.config.rate_limit)
        self.local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            session = requests.Session()
            session.headers["User-Agent"] = self.config.user_agent
            self.local.session = session
        return self.local.session

    def _get(self, url: str) -> requests.Response:
        """One GET with retries and exponential backoff on transient failures."""
        last: _Transient | None = None
        for attempt in range(self.config.retries + 1):
            if attempt:
                time.sleep(self.config.backoff * 2 ** (attempt - 1))
            self.limiter.wait()
            try:
                response = self._session().get(url, timeout=self.config.timeout)
                content = response.content  # reads the whole body; raises on a truncated one
            except requests.Timeout as exc:
                last = _Transient("timeout", f"timed out after {self.config.timeout:g}s ({type(exc).__name__})")
                continue
            except requests.exceptions.ChunkedEncodingError as exc:
                last = _Transient("truncated", f"body ended early ({exc.__class__.__name__})")
                continue
            except requests.ConnectionError as exc:
                last = _Transient("connection_error", str(exc)[:200])
                continue
            if response.status_code >= 500 or response.status_code == 429:
                last = _Transient("http_error", f"HTTP {response.status_code}", response.status_code)
                continue
            response._content = content
            return response
        assert last is not None
        raise last

    def poster_path(self, movie_id: str) -> Path:
        return self.posters_dir / f"{movie_id}.jpg"

    def fetch(self, movie_id: str, url: str, imdb_link: str = "") -> Result:
        target = self.poster_path(movie_id)
        if target.exists() and decodes(target.read_bytes()):
            return Result(movie_id, url, "present", bytes=target.stat().st_size)
        try:
            if not url and imdb_link:
                page = self._get(imdb_link)
                if page.status_code != 200:
                    return Result(movie_id, imdb_link, "not_found" if page.status_code == 404 else "http_error",
                                  page.status_code, f"IMDb page: HTTP {page.status_code}")
                url = poster_url_from_imdb_html(page.text) or ""
                if not url:
                    return Result(movie_id, imdb_link, "no_url", 200, "no poster URL on the IMDb page")
            if not url:
                return Result(movie_id, url, "no_url", reason="no poster URL and no IMDb link")
            response = self._get(url)
        except _Transient as exc:
            return Result(movie_id, url, exc.status, exc.http_code, exc.reason)
        except requests.RequestException as exc:  # invalid URL and the like: not retried
            return Result(movie_id, url, "connection_error", None, f"{type(exc).__name__}: {exc}"[:200])
        data, code = response.content, response.status_code
        if code == 404:
            return Result(movie_id, url, "not_found", code, "HTTP 404")
        if code != 200:
            return Result(movie_id, url, "http_error", code, f"HTTP {code}", len(data))
        if not data:
            return Result(movie_id, url, "empty", code, "zero bytes", 0)
        if not decodes(data):
            kind = response.headers.get("Content-Type", "?")
            return Result(movie_id, url, "not_image", code, f"bytes do not decode as an image (Content-Type {kind})",
                          len(data))
        self._write(target, data)
        return Result(movie_id, url, "ok", code, "", len(data))

    def _write(self, target: Path, data: bytes) -> None:
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.partial_dir / f"{target.name}.{os.getpid()}.{threading.get_ident()}"
        # No fsync: a re-run fully decodes every poster already present and fetches a damaged one again,
        # so durability against power loss costs a disk flush per poster for nothing.
        tmp.write_bytes(data)
        os.replace(tmp, target)

    def run(self, jobs: pd.DataFrame, progress: bool = True) -> pd.DataFrame:
        """Download every row of `jobs` (id, url, imdb_link); returns the report table."""
        self.posters_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.partial_dir.glob("*") if self.partial_dir.exists() else []:
            stale.unlink(missing_ok=True)  # left by a killed run; never a finished poster
        results = []
        with ThreadPoolExecutor(max_workers=self.config.workers) as pool:
            futures = [pool.submit(self.fetch, row.id, row.url, row.imdb_link) for row in jobs.itertuples()]
            for future in progress_bar(as_completed(futures), total=len(futures), desc="posters",
                               unit="poster", disable=not progress):
                results.append(future.result())
        report = pd.DataFrame([asdict(r) for r in results], columns=REPORT_COLUMNS)
        report["http_code"] = report["http_code"].astype("Int64")
        return report.sort_values("id", kind="stable").reset_index(drop=True)


def summary_line(report: pd.DataFrame) -> str:
    counts = report["status"].value_counts()
    parts = ", ".join(f"{counts[s]} {s}" for s in counts.index)
    return f"{len(report)} posters: {parts}"


def download_posters(jobs: pd.DataFrame, posters_dir: Path, report_path: Path,
                     config: DownloadConfig | None = None, progress: bool = True) -> pd.DataFrame:
    report = Downloader(posters_dir, config).run(jobs, progress=progress)
    write_csv(report, report_path, for_people=True)
    return report
