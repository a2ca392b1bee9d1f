"""Stage 7: genres for any poster, with Grad-CAM heatmaps of where the evidence lies.

Posters may be JPEG, PNG or WebP, grayscale, CMYK or transparent, any size. A
missing file or a non-image gives one line naming it; the other posters are
still predicted.
"""
from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from .config import Paths, UserError
from .images import PosterError, load_poster
from .litert import LiteNetwork

DEFAULT_MODEL = "default"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")


def expand_inputs(inputs: list[str | Path]) -> pd.DataFrame:
    """Posters named directly, every image in a folder, or the rows of a CSV with a poster_path column."""
    rows = []
    for item in map(Path, inputs):
        if item.is_dir():
            rows += [{"poster": str(p), "title": p.stem} for p in sorted(item.iterdir())
                     if p.suffix.lower() in IMAGE_SUFFIXES]
        elif item.suffix.lower() == ".csv":
            from .io import read_csv
            table = read_csv(item, ["poster_path"])
            titles = table.title if "title" in table else table.poster_path.map(lambda p: Path(p).stem)
            if "year" in table:
                titles = [f"{t} ({y})" if y else t for t, y in zip(titles, table.year)]
            rows += [{"poster": p, "title": t} for p, t in zip(table.poster_path, titles)]
        else:
            rows.append({"poster": str(item), "title": item.stem})
    return pd.DataFrame(rows, columns=["poster", "title"])


def _load(path: str, size, fit):
    try:
        return load_poster(path, size, fit), ""
    except PosterError as exc:
        return None, str(exc)


def network_outputs(posters: pd.DataFrame, trained, batch_size: int = 64, progress: bool = False):
    """(uncalibrated probabilities or None, error) per poster; posters are decoded while the network runs."""
    from tqdm.auto import tqdm
    size, fit = trained.input_size, trained.fit
    chunks = [posters.iloc[i:i + batch_size] for i in range(0, len(posters), batch_size)]
    results = []
    bar = tqdm(total=len(posters), desc="predict", unit="poster", disable=not progress)
    network = lambda x: trained.model(x, training=False)  # noqa: E731
    # Keras: one batch is an eager call (tracing a graph would cost more than the prediction); more, a graph
    if len(chunks) > 1 and not isinstance(trained.model, LiteNetwork):
        import tensorflow as tf
        network = tf.function(network, reduce_retracing=True)
    with ThreadPoolExecutor(max_workers=4) as pool:
        pending = [pool.submit(_load, p, size, fit) for p in chunks[0].poster] if chunks else []
        for n, chunk in enumerate(chunks):
            loaded = [f.result() for f in pending]
            if n + 1 < len(chunks):  # decode the next batch while this one runs through the network
                pending = [pool.submit(_load, p, size, fit) for p in chunks[n + 1].poster]
            images = [image for image, _ in loaded if image is not None]
            scores = iter(np.asarray(network(np.stack(images).astype(np.float32)))) if images else iter([])
            results += [(None if image is None else next(scores), error) for image, error in loaded]
            bar.update(len(chunk))
    bar.close()
    return results


def predict_table(posters: pd.DataFrame, trained, top: int = 3, batch_size: int = 64, progress: bool = False,
                  adapt_prior: bool = False, prior=None, estimator: str | None = None) -> pd.DataFrame:
    """One row per poster: top genres, genres above the tuned thresholds, every calibrated probability, error.

    adapt_prior / prior: probabilities and thresholds moved to the genre mix of these posters, estimated from
    them (or given as a genre,share CSV); table.attrs["adaptation"] says how.
    """
    outputs = network_outputs(posters, trained, batch_size, progress)
    ok = [i for i, (raw, _) in enumerate(outputs) if raw is not None]
    probabilities = trained.calibration.apply(np.stack([outputs[i][0] for i in ok])) if ok else np.zeros((0, 0))
    thresholds, adaptation = trained.thresholds, None
    if ok and (adapt_prior or prior is not None):
        from .evaluate import adapt_to_collection
        from .label_shift import DEFAULT_ESTIMATOR
        adaptation = adapt_to_collection(trained, probabilities, prior, estimator or DEFAULT_ESTIMATOR)
        probabilities, thresholds = adaptation.pop("scores"), adaptation.pop("thresholds")
    calibrated = dict(zip(ok, probabilities))
    rows = [_row(poster, title, calibrated.get(i), error, trained.genres, thresholds, top)
            for i, ((poster, title), (_, error)) in enumerate(zip(posters[["poster", "title"]].itertuples(index=False),
                                                                 outputs))]
    table = pd.DataFrame(rows)
    table.attrs["adaptation"] = adaptation
    return table


def _row(poster, title, probabilities, error, genres, thresholds, top):
    row = {"poster": poster, "title": title, "error": error}
    if probabilities is None:
        return row
    probabilities = np.asarray(probabilities, dtype=float)
    order = np.argsort(-probabilities)[:top]
    row["top"] = [(genres[j], round(float(probabilities[j]), 4)) for j in order]
    row["above_threshold"] = [g for g, p, t in zip(genres, probabilities, thresholds) if p >= t]
    row.update({f"p_{g}": round(float(p), 4) for g, p in zip(genres, probabilities)})
    return row


def format_line(row: dict) -> str:
    """'The Pianist (2002)   Drama (0.61), War (0.43), History (0.40)   [above thresholds: Drama, War]'"""
    if row.get("error"):
        return f"{row['title']}   error: {row['error']}"
    top = ", ".join(f"{g} ({p:.2f})" for g, p in row["top"])
    above = ", ".join(row["above_threshold"]) or "none"
    return f"{row['title']}   {top}   [above thresholds: {above}]"


def gradcam(trained, image: np.ndarray, genre: int | str) -> np.ndarray:
    """A heatmap (image height x width, 0..1) of where the evidence for one genre lies."""
    import keras
    import tensorflow as tf

    from .models import LAST_CONV

    index = trained.genres.index(genre) if isinstance(genre, str) else int(genre)
    layer_name = LAST_CONV.get(trained.name)
    network = trained.keras_model()
    try:
        conv = network.get_layer(layer_name)
    except ValueError:
        raise UserError(f"{trained.folder}: no layer {layer_name!r} for Grad-CAM in this model") from None
    grad_model = keras.Model(network.inputs, [conv.output, network.output])
    x = tf.convert_to_tensor(image[None].astype(np.float32))
    with tf.GradientTape() as tape:
        activations, probabilities = grad_model(x, training=False)
        score = probabilities[:, index]
    gradients = tape.gradient(score, activations)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1))[0]
    cam = tf.image.resize(cam[..., None], image.shape[:2])[..., 0].numpy()
    return cam / cam.max() if cam.max() > 0 else cam


def predict(inputs: list[str | Path], model: str | Path = DEFAULT_MODEL, top: int = 3, paths: Paths | None = None,
            progress: bool | None = None, adapt_prior: bool = False, prior=None,
            estimator: str | None = None, runtime: str = "litert") -> pd.DataFrame:
    """runtime: litert (model.tflite, no TensorFlow) or keras."""
    from .model_folder import load_trained, resolve_model
    posters = expand_inputs(inputs)
    if posters.empty:
        raise UserError(f"no posters found in {', '.join(map(str, inputs))}")
    trained = load_trained(resolve_model(model, paths or Paths.default()), runtime)
    return predict_table(posters, trained, top=top, progress=len(posters) > 20 if progress is None else progress,
                         adapt_prior=adapt_prior, prior=prior, estimator=estimator)


def write_predictions(table: pd.DataFrame, path: Path) -> Path:
    from .io import write_csv
    flat = table.copy()
    if "top" in flat:
        flat["top"] = flat["top"].map(lambda t: "|".join(f"{g}:{p:.4f}" for g, p in t) if isinstance(t, list) else "")
        flat["above_threshold"] = flat["above_threshold"].map(lambda t: "|".join(t) if isinstance(t, list) else "")
    return write_csv(flat, path)


def print_predictions(table: pd.DataFrame, as_json: bool = False, out=sys.stdout) -> None:
    import json
    if as_json:
        records = [{k: v for k, v in row.items() if not (isinstance(v, float) and np.isnan(v))}
                   for row in table.to_dict("records")]
        out.write(json.dumps(records, indent=1) + "\n")
        return
    for row in table.to_dict("records"):
        out.write(format_line(row) + "\n")


def example_poster(paths: Paths) -> str:
    """A poster no model trained on: the first of the test split, else the first of the sample."""
    from .config import SHARED_SAMPLE
    test = paths.split_csv("test")
    if test.exists():
        return str(pd.read_csv(test, usecols=["poster_path"]).poster_path[0])
    images = sorted((SHARED_SAMPLE / "images").glob("*.jpg"))
    if not images:
        raise UserError("no example poster: give POSTER a file")
    return str(images[0])
