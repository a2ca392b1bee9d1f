"""The words printed on a poster, read once with RapidOCR and cached.

RapidOCR's PP-OCR detection and recognition models ship inside the `rapidocr-onnxruntime` wheel and run on
onnxruntime: nothing is downloaded, nothing imports TensorFlow. Every poster is scaled to one size before it is
read (the thumbnails' own 268 px on the long side by default), so that a large upload and a thumbnail show the
detector text of the same size; the library's default scales a thumbnail up about four times, which reads
twice the words at a seventh of the speed (benchmarks/bench_ocr.py measures both and the text head on each).

A project's words are cached in data/cache/text/<settings>.jsonl, one line per poster keyed by the SHA-256 of
its bytes: a killed run keeps every line it wrote and goes on from there.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image

from ..config import UserError, describe, progress_bar
from ..data.images import PosterError, check_poster_file, open_rgb
from ..data.photo import poster_corners, poster_in
from ..data.io import file_sha256

OCR_PACKAGE = "rapidocr-onnxruntime"
READ_THREADS = 2  # one engine a core; onnxruntime and OpenCV release the GIL, so threads scale like processes


@dataclass(frozen=True)
class OcrSettings:
    side: int = 268                  # the poster's long side, in pixels, when the detector sees it
    angle_classifier: bool = False   # upside-down lines are rare on posters; it costs a third of the time
    min_score: float = 0.5           # the recogniser's confidence below which a line is dropped
    recogniser_batch: int = 1        # lines per recogniser run: a batch is padded to its widest line (6: 30% slower)
    recogniser_width: int = 48       # a line is padded to at least this width: 48, its own (the library pads to 320)
    threads_per_engine: int = 1

    def engine_options(self) -> dict:
        return {"use_cls": self.angle_classifier, "det_limit_side_len": self.side, "det_limit_type": "max",
                "text_score": self.min_score, "rec_batch_num": self.recogniser_batch,
                "rec_img_shape": [3, 48, self.recogniser_width],
                "intra_op_num_threads": self.threads_per_engine,
                "inter_op_num_threads": 1}

    def describe(self) -> dict:
        """What a model's manifest records about how its words were read."""
        return {"package": OCR_PACKAGE, "version": package_version(), **asdict(self)}

    @property
    def key(self) -> str:
        text = json.dumps(self.describe(), sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    @classmethod
    def from_json(cls, data: dict | None) -> OcrSettings:
        data = data or {}
        return cls(**{k: data[k] for k in ("side", "angle_classifier", "min_score", "recogniser_batch",
                                                        "recogniser_width", "threads_per_engine")
                      if k in data})


@dataclass
class PosterText:
    """The lines read from one poster with the recogniser's confidence, or why none could be read."""
    lines: list[tuple[str, float]]
    error: str = ""

    @property
    def text(self) -> str:
        return " ".join(line for line, _ in self.lines)

    def to_json(self) -> dict:
        return {"lines": [[line, round(float(score), 4)] for line, score in self.lines], "error": self.error}

    @classmethod
    def from_json(cls, data: dict) -> PosterText:
        return cls([(str(line), float(score)) for line, score in data.get("lines", [])], data.get("error", ""))


def package_version() -> str:
    try:
        return metadata.version(OCR_PACKAGE)
    except metadata.PackageNotFoundError:
        return "not installed"


def new_engine(settings: OcrSettings):
    """A RapidOCR engine, or a UserError that names the package to install."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except Exception as exc:  # ImportError, or a broken onnxruntime / OpenCV underneath it
        raise UserError(f"the text recogniser could not be loaded ({describe(exc)}): install it with "
                        f"`pip install {OCR_PACKAGE}` (see requirements.txt), or predict with --no-text") from None
    return RapidOCR(**settings.engine_options())


def scaled(image: Image.Image, side: int) -> Image.Image:
    """The poster with its long side at `side` pixels."""
    ratio = side / max(image.size)
    size = (max(1, round(image.width * ratio)), max(1, round(image.height * ratio)))
    return image if size == image.size else image.resize(size, Image.BILINEAR)


def read_poster(engine, poster, settings: OcrSettings, find_poster: bool = False) -> PosterText:
    """The lines printed on one poster (a path, a PIL image or an RGB array), or why it could not be read;
    find_poster: read the poster found in a photo of it (the whole picture when none is found)."""
    try:
        if isinstance(poster, np.ndarray):
            image = Image.fromarray(np.asarray(poster, dtype=np.uint8)).convert("RGB")
        elif isinstance(poster, Image.Image):
            image = poster.convert("RGB")
        else:
            image = open_rgb(poster)
        if find_poster:
            image = poster_in(image)
        result, _ = engine(scaled(image, settings.side))
    except PosterError as exc:
        return PosterText([], str(exc))
    except Exception as exc:  # the recogniser failing on one poster costs the others nothing
        return PosterText([], f"text could not be read ({describe(exc)})")
    return PosterText([(line, float(score)) for _, line, score in result or [] if str(line).strip()])


def poster_key(poster) -> str | None:
    """The SHA-256 of a poster file's bytes (the cache key); None for an image in memory, or a file that cannot be
    opened (missing, unreadable, not a regular file, too large), whose reading then fails for that poster alone."""
    if not isinstance(poster, (str, Path)):
        return None
    try:
        check_poster_file(poster)
        return file_sha256(Path(poster))
    except (PosterError, OSError):
        return None


def crop_key(corners: np.ndarray) -> str:
    """A short name for where a crop lies: its corners to the whole pixel."""
    return hashlib.sha1(np.round(np.asarray(corners, np.float64)).astype(np.int64).tobytes()).hexdigest()[:12]


class TextCache:
    """Lines read per poster, appended to one JSON-lines file as they come (a kill loses at most a partial line,
    which the next open cuts off)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.entries: dict[str, PosterText] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        complete = data[:data.rfind(b"\n") + 1]
        if len(complete) != len(data):  # a partial last line from a killed run
            with open(self.path, "r+b") as f:
                f.truncate(len(complete))
        for number, line in enumerate(complete.decode("utf-8", errors="replace").splitlines(), 1):
            try:
                record = json.loads(line)
                self.entries[record["sha256"]] = PosterText.from_json(record)
            except (ValueError, KeyError, TypeError):
                raise UserError(f"{self.path}, line {number}: not a cache record; delete the file to read the "
                                f"posters again") from None

    def add(self, items: list[tuple[str, PosterText]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            for key, text in items:
                f.write(json.dumps({"sha256": key, **text.to_json()}, ensure_ascii=False) + "\n")
                self.entries[key] = text
            f.flush()
            os.fsync(f.fileno())


class Reader:
    """Reads posters with one engine per thread, through a cache when given one."""

    def __init__(self, settings: OcrSettings = OcrSettings(), cache_dir: Path | None = None,
                 threads: int = READ_THREADS, find_poster: bool = False):
        self.settings, self.threads, self.find_poster = settings, threads, find_poster
        self.cache = TextCache(Path(cache_dir) / f"{settings.key}.jsonl") if cache_dir else None
        self._engines: queue.SimpleQueue = queue.SimpleQueue()  # idle engines, one per thread at most
        self._engines.put(new_engine(settings))  # now: a missing package is one error naming it, not one a poster

    def _read_one(self, poster) -> PosterText:
        try:
            engine = self._engines.get_nowait()
        except queue.Empty:
            engine = new_engine(self.settings)
        try:
            return read_poster(engine, poster, self.settings, self.find_poster)
        finally:
            self._engines.put(engine)

    def key(self, poster) -> str | None:
        """The cache key of a poster's words: its file's SHA-256, and where a poster was found in the picture, the
        crop's corners (its words are read from the crop, so a finder that crops elsewhere reads them again; a poster
        file taken whole keeps the key its words were cached under)."""
        key = poster_key(poster)
        if key is None or not self.find_poster:
            return key
        try:
            corners = poster_corners(open_rgb(poster))
        except PosterError:
            return key
        return key if corners is None else f"{key}:poster:{crop_key(corners)}"

    def read(self, posters, progress: bool = False, desc: str = "read text") -> list[PosterText]:
        posters = list(posters)
        keys = [self.key(p) for p in posters] if self.cache else [None] * len(posters)  # (a key costs a search)
        known = self.cache.entries if self.cache else {}
        todo = [i for i, key in enumerate(keys) if key is None or key not in known]
        results: dict[int, PosterText] = {}
        bar = progress_bar(total=len(todo), desc=desc, unit="poster", disable=not progress or not todo)
        pool = ThreadPoolExecutor(max_workers=max(1, min(self.threads, len(todo))))
        try:
            for start in range(0, len(todo), 64):  # one cache write per 64 posters
                chunk = todo[start:start + 64]
                for i, text in zip(chunk, pool.map(lambda i: self._read_one(posters[i]), chunk)):
                    results[i] = text
                if self.cache:
                    self.cache.add([(keys[i], results[i]) for i in chunk
                                    if keys[i] is not None and not results[i].error.startswith("text could not")])
                bar.update(len(chunk))
        except BaseException:  # Ctrl-C or SIGTERM: drop the posters not started rather than wait for the chunk
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            bar.close()
        pool.shutdown()
        return [results[i] if i in results else known[keys[i]] for i in range(len(posters))]
