import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from postergenre.config import SHARED_SAMPLE, Paths  # noqa: E402

SHARED_DATA = SHARED_SAMPLE.parent


REQUIRE_SHARED = "POSTERGENRE_REQUIRE_SHARED"  # set by .ci/run: missing real posters fail the run, never skip


def missing_shared(reason: str):
    """Skip a test whose real posters are missing; fail it instead where the run must have them (CI)."""
    if os.environ.get(REQUIRE_SHARED):
        pytest.fail(f"{reason}; {REQUIRE_SHARED} is set, so a missing shared data folder fails the run")
    pytest.skip(reason)


def require_shared() -> Path:
    if not (SHARED_SAMPLE / "labels.csv").exists():
        missing_shared(f"real posters not found at {SHARED_SAMPLE} (the shared data folder beside the repo)")
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


@pytest.fixture(scope="session")
def encoded_project(tmp_path_factory) -> Paths:
    """A project whose data stages ran on 300 real posters: split CSVs ready for training."""
    from postergenre.data.clean import clean
    from postergenre.data.encode import encode
    from postergenre.data.get_data import get_data
    sample = require_shared()
    base = tmp_path_factory.mktemp("encoded")
    labels = pd.read_csv(sample / "labels.csv", dtype=str, keep_default_na=False).iloc[::26].head(300)
    (base / "slice").mkdir()
    labels.to_csv(base / "slice" / "labels.csv", index=False)
    (base / "slice" / "images").symlink_to(sample / "images")
    paths = Paths.default(base / "project")
    get_data(base / "slice", paths, progress=False)
    clean(paths, progress=False)
    encode(paths, figures=False)
    return paths


def clone_project(paths: Paths, target: Path) -> Paths:
    """A copy of a project's data/ (not its models), so a test can train without touching others."""
    shutil.copytree(paths.data, target / "data", ignore=shutil.ignore_patterns("cache"))
    return Paths.default(target)


@pytest.fixture(scope="session")
def full_project(tmp_path_factory) -> Paths:
    """The data stages run on the whole sample: the same split (seed 42) the shipped default model was trained on."""
    from postergenre.data.clean import clean
    from postergenre.data.encode import encode
    from postergenre.data.get_data import get_data
    paths = Paths.default(tmp_path_factory.mktemp("full") / "project")
    get_data(require_shared(), paths, progress=False)
    clean(paths, progress=False)
    encode(paths, figures=False)
    return paths


@pytest.fixture(scope="session")
def trained_project(encoded_project, tmp_path_factory) -> Paths:
    """A project with an efficientnet_lite0 head trained on its 300 posters (evaluation, prediction, shipping)."""
    from postergenre.training.train import TrainConfig, train
    paths = clone_project(encoded_project, tmp_path_factory.mktemp("trained"))
    # 200 posters: batches of 64 give the head enough steps in 3 epochs for Grad-CAM to differ between genres
    train(TrainConfig(model="efficientnet_lite0", epochs=3, input_size=(112, 76), head_batch_size=64), paths)
    return paths


SHARED_FIXTURES = {"sample", "small_folder", "encoded_project", "full_project", "trained_project", "cluster_project"}
TRAINING_FIXTURES = {"trained_project", "cluster_project"}


def pytest_collection_modifyitems(items):
    """Markers that say what a test needs, from the fixtures it takes (modules mark the rest themselves)."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & SHARED_FIXTURES:
            item.add_marker(pytest.mark.shared)
        if fixtures & TRAINING_FIXTURES:
            item.add_marker(pytest.mark.trains)
