import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from postergenre.config import Paths, SHARED_SAMPLE  # noqa: E402

SHARED_DATA = SHARED_SAMPLE.parent


def require_shared() -> Path:
    if not (SHARED_SAMPLE / "labels.csv").exists():
        pytest.skip(f"real posters not found at {SHARED_SAMPLE} (the shared data folder beside the repo)")
    return SHARED_SAMPLE


@pytest.fixture
def sample() -> Path:
    return require_shared()


@pytest.fixture
def project(tmp_path) -> Paths:
    """An empty project folder: every stage writes under it."""
    return Paths.default(tmp_path / "project")


@pytest.fixture
def small_folder(tmp_path, sample) -> Path:
    """A poster folder of 300 real posters: labels.csv here, images read from ../shared."""
    labels = pd.read_csv(sample / "labels.csv", dtype=str, keep_default_na=False).head(300)
    folder = tmp_path / "small"
    folder.mkdir()
    labels.to_csv(folder / "labels.csv", index=False)
    (folder / "images").symlink_to(sample / "images")
    return folder


def real_posters(n: int) -> list[Path]:
    return sorted((require_shared() / "images").glob("*.jpg"))[:n]


def copy_posters(target: Path, n: int) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(p, target / p.name)) for p in real_posters(n)]
