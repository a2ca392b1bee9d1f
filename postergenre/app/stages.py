"""Stages that run once: each has a key (its settings and the fingerprints of its inputs) and records it, with the
fingerprint of what it wrote, in a JSON log. A stage whose key and output match the log is skipped; one recorded as
running under the same key resumes (its own work picks up where it stopped); any other starts fresh."""
from __future__ import annotations

import hashlib
import json
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..data.io import file_sha256, read_json, write_json


def digest(*parts) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def content_hash(path: Path) -> str:
    """A file's SHA-256; a .keras file's over its contents less metadata.json, whose save date differs between two
    runs that wrote the same weights."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    if path.suffix != ".keras":
        return file_sha256(path)
    with zipfile.ZipFile(path) as archive:
        return digest([(name, hashlib.sha256(archive.read(name)).hexdigest())
                       for name in sorted(archive.namelist()) if name != "metadata.json"])


def files_fingerprint(files: list[Path]) -> str:
    """One hash over files' contents ("missing" for one that is not there)."""
    return digest([(Path(f).name, content_hash(f)) for f in files])


def source_fingerprint(source: Path) -> str:
    """A source as it stands: a file's hash; a folder's CSV files' hashes and its images' names and sizes
    (hashing every image's bytes would cost minutes on 18,000 posters)."""
    source = Path(source)
    if source.is_file():
        return file_sha256(source)
    listing = [(str(p.relative_to(source)), p.stat().st_size) for p in sorted(source.rglob("*")) if p.is_file()
               and p.suffix.lower() != ".csv"]
    return digest(files_fingerprint(sorted(source.glob("*.csv"))), listing)


@dataclass
class Stage:
    name: str
    section: object                     # the part of the recipe it depends on
    inputs: Callable[[], list[str]]     # fingerprints of what it reads (earlier stages' outputs)
    run: Callable[[], str]              # does the work; returns its key figure, one line
    output: Callable[[], str]           # the fingerprint of what it wrote ("" when it is not there)
    fresh: Callable[[], None] = lambda: None  # clears a half-done run made with another key


class StageLog:
    """stages.json: per stage its key, status (running/done), output fingerprint, seconds and key figure."""

    def __init__(self, path: Path):
        self.path = path
        self.entries = read_json(path) if path.exists() else {}

    def get(self, name: str) -> dict:
        return self.entries.get(name, {})

    def set(self, name: str, **entry) -> None:
        self.entries[name] = entry
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.entries, self.path)  # atomic


def run_stages(stages: list[Stage], log: StageLog, out=print) -> dict:
    """Run the stages that are not current, in order; {stage: 'ran' | 'current'}."""
    done = {}
    width = len(str(len(stages)))
    for number, stage in enumerate(stages, 1):
        tag = f"[{number:>{width}}/{len(stages)}] {stage.name}"
        key = digest(stage.name, stage.section, stage.inputs())
        entry = log.get(stage.name)
        if entry.get("key") == key and entry.get("status") == "done" and entry.get("output") == stage.output():
            out(f"{tag}: current, skipped ({entry.get('figure', '')})")
            done[stage.name] = "current"
            continue
        resuming = entry.get("key") == key and entry.get("status") == "running"
        if not resuming:
            stage.fresh()
        out(f"{tag}: {'resumed' if resuming else 'started'}")
        log.set(stage.name, key=key, status="running")
        start = time.perf_counter()
        figure = stage.run()
        seconds = round(time.perf_counter() - start, 1)
        log.set(stage.name, key=key, status="done", output=stage.output(), seconds=seconds, figure=figure,
                finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        out(f"{tag}: done in {seconds:.0f} s: {figure}")
        done[stage.name] = "ran"
    return done
