"""The one place for paths and defaults.

Every stage takes a `Paths` so that tests and notebooks can point the whole
pipeline at another folder. Where models and data live, first that applies:
`--model PATH` (a model folder) > `--root` > the POSTERGENRE_ROOT environment
variable > the repository, when run from a checkout > the current folder. Nothing
is ever written into site-packages; an installed wheel reads its shipped default
from inside the package when the project has none.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
# run from a checkout (the repository beside its package), not from an installed wheel in site-packages
IN_CHECKOUT = (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "notebooks").is_dir()
PACKAGED_MODELS = PACKAGE_DIR / "_models"  # the shipped default inside an installed wheel (setup.py packs it)
SHARED_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "kaggle_posters_8k"

SEED = 42
# from scratch: custom_cnn's one-cycle spans 4 (6 gained 0.011 of validation macro AP on the sample for 1.5x the
# time, and `make all` must fit in 10 minutes; for the same reason its input is 96x64, not 112x76: 0.6 of the time
# for validation macro AP 0.292 against 0.298); the seeds ran 10
EPOCHS = {"custom_cnn": 4, "seed_cnn": 10}
HEAD_EPOCHS = 40  # a head on cached features (early stopping ends it sooner)
LOSSES = ("bce", "weighted", "focal", "asymmetric")
CALIBRATION_METHODS = ("none", "temperature", "platt", "isotonic")  # postergenre.calibration
QUANTIZATIONS = ("none", "float16", "dynamic", "int8")  # model.tflite as shipped (inference/quantize.py)
PRIOR_ESTIMATORS = ("cc", "em", "em_shrunk", "bbse", "gated")  # postergenre.label_shift
DEFAULT_PRIOR_ESTIMATOR = "gated"  # measured: notebook 06, benchmarks/results/shift.json
MIN_POSTERS_TO_ADAPT = 50  # smaller collections keep the training genre mix (postergenre.scoring.label_shift)


class UserError(Exception):
    """An expected problem with the user's input: printed as one line, no traceback."""


MODEL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}", re.ASCII)


def checked_name(name: str, what: str = "name", nested: bool = False) -> str:
    """A model's or member's name: one path component of letters, digits, '-', '_' and '.', so that it names a
    folder inside models/ and nothing else (nested: several such components joined by '/', as a rebuild names the
    members it trains in models/NAME.parts/)."""
    parts = name.split("/") if isinstance(name, str) and nested else [name]
    if not all(isinstance(p, str) and MODEL_NAME.fullmatch(p) and set(p) != {"."} for p in parts):
        raise UserError(f"{what} {name!r}: a name is 1 to 100 letters, digits, '-', '_' or '.' (one folder "
                        "under models/, no path)")
    return name


def describe(exc: BaseException, limit: int = 150) -> str:
    """A library's exception as part of one error line: its type and the first line of its message."""
    message = str(exc).splitlines()[0][:limit] if str(exc).strip() else repr(exc)
    return f"{type(exc).__name__}: {message}"


@dataclass(frozen=True)
class Paths:
    root: Path

    @classmethod
    def default(cls, root: str | os.PathLike | None = None) -> Paths:
        root = root or os.environ.get("POSTERGENRE_ROOT") or (REPO_ROOT if IN_CHECKOUT else Path.cwd())
        return cls(Path(root).resolve())

    @property
    def data(self) -> Path: return self.root / "data"
    @property
    def raw(self) -> Path: return self.data / "raw"
    @property
    def interim(self) -> Path: return self.data / "interim"
    @property
    def processed(self) -> Path: return self.data / "processed"
    @property
    def posters(self) -> Path: return self.root / "Posters"
    @property
    def models(self) -> Path: return self.root / "models"
    @property
    def reports(self) -> Path: return self.root / "reports"
    @property
    def figures(self) -> Path: return self.reports / "figures"
    @property
    def cache(self) -> Path: return self.data / "cache"

    # files handed from stage to stage
    @property
    def movies_csv(self) -> Path: return self.raw / "movies.csv"
    @property
    def download_report(self) -> Path: return self.raw / "download_report.csv"
    @property
    def get_data_report(self) -> Path: return self.raw / "get_data_report.csv"
    @property
    def clean_csv(self) -> Path: return self.interim / "movies_clean.csv"
    @property
    def clean_report(self) -> Path: return self.interim / "clean_report.csv"
    @property
    def genres_json(self) -> Path: return self.processed / "genres.json"

    def split_csv(self, split: str) -> Path:
        return self.processed / f"{split}.csv"


@dataclass
class DownloadConfig:
    workers: int = 16
    timeout: float = 10.0           # seconds per request
    retries: int = 3                # extra attempts after the first
    backoff: float = 0.5            # seconds; doubles on every retry
    rate_limit: float | None = None  # requests per second over all workers
    user_agent: str = "postergenre/0.1 (+poster genre research; python-requests)"


@dataclass
class CleanConfig:
    min_width: int = 64
    min_height: int = 64


@dataclass
class VocabularyRules:
    drop: list[str] = field(default_factory=lambda: ["TV Movie", "Foreign"])
    # News: every one of the 23 News films of the Kaggle data is also a Documentary (measured; see encode)
    merge: dict[str, str] = field(default_factory=lambda: {"Musical": "Music", "News": "Documentary"})
    synonyms: dict[str, str] = field(default_factory=lambda: {
        "Science Fiction": "Sci-Fi", "Sci Fi": "Sci-Fi", "SciFi": "Sci-Fi",
        "Film-Noir": "Film Noir", "Reality-TV": "Reality TV",
    })
    min_count: int = 20             # rarer genres are merged into `other`
    other: str = "Other"
    drop_small_other: bool = False  # drop `other` too when it is itself rarer than min_count


@dataclass
class SplitConfig:
    val: float = 0.15
    test: float = 0.15
    seed: int = SEED
    min_positives_warning: int = 5


HEADLESS = "POSTERGENRE_HEADLESS"  # set while `make all` executes the notebooks: nobody is watching


def progress_bar(iterable=None, **options):
    """tqdm (a widget in a notebook, text in a terminal); none in a notebook run headless, whose saved copy would
    show a widget's first state, 0%, however far the work went."""
    if os.environ.get(HEADLESS):
        options["disable"] = True
    if options.get("disable"):
        return _NoBar(iterable)
    from tqdm.auto import tqdm
    return tqdm(iterable, **options)


class _NoBar:
    """A disabled bar without importing tqdm (a tenth of a one-poster prediction's start-up)."""

    def __init__(self, iterable=None):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass
