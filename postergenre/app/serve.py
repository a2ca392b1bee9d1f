"""`postergenre serve`: a web page in front of the shipped model (Gradio), offline, on 127.0.0.1 by default.

One poster: its top genres, every genre's probability against its tuned threshold (the figure of notebook 07),
a Grad-CAM overlay per top genre and the genres above the thresholds. Many posters (images or a zip): a table,
downloadable as CSV, optionally adapted to the collection's genre mix. Predictions run on LiteRT through the
model folder's Predictor; Grad-CAM needs the Keras network's gradients, so TensorFlow is imported on the first heatmap only.
"""
from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
from matplotlib import colormaps
from PIL import Image, UnidentifiedImageError

from ..config import MIN_POSTERS_TO_ADAPT, Paths, UserError
from ..data.images import PosterError, decode, fit_image, to_rgb
from ..data.io import read_json
from ..inference.model_folder import model_names, read_manifest, resolve_model
from ..inference.predict import IMAGE_SUFFIXES, write_predictions
from ..inference.predictor import load, poster_row
from .figures import genre_bars

MAX_UPLOAD_MB = 20
MAX_UPLOAD_PIXELS = 25_000_000  # a poster is about 0.1 megapixels; a larger image is refused before decoding


def model_choices(paths: Paths) -> list[str]:
    """Model folders under models/ that can predict, the shipped default first."""
    names = [n for n in model_names(paths) if n != "default"]
    try:
        resolve_model("default", paths)
        names = ["default", *names]
    except UserError:
        pass
    return names


def model_summary(folder: Path) -> str:
    """One line for the page: the model and its test figures beside the constant baseline, from its files."""
    manifest = read_manifest(folder)
    figures = manifest.get("test_metrics")
    if not figures and (folder / "eval_test.json").exists():
        figures = read_json(folder / "eval_test.json").get("metrics")
    name = f"**{folder.name}** ({manifest.get('model')})"
    if not figures:
        return f"{name}: not evaluated on the test split yet (`postergenre evaluate --model {folder.name}`)"
    model_key = next(k for k in figures if not k.startswith("baseline"))
    model, baseline = figures[model_key], figures.get("baseline: 3 most frequent genres", {})
    text = (f"{name} on the test split: macro AP **{model['macro_ap'][0]:.3f}**, top-3 hit rate "
            f"**{model['top3_hit_rate'][0]:.3f}**")
    if baseline:
        text += (f"; the constant guess (the 3 most frequent genres): macro AP {baseline['macro_ap'][0]:.3f}, "
                 f"top-3 {baseline['top3_hit_rate'][0]:.3f}")
    return text


def read_upload(path: str | Path, name: str | None = None):
    """An uploaded file as an RGB image, or PosterError naming it: too large, not an image, truncated, a bomb."""
    path = Path(path)
    name = name or path.name
    if not path.exists() or path.stat().st_size == 0:
        raise PosterError(name, "corrupt", "the upload is empty")
    if path.stat().st_size > MAX_UPLOAD_MB * 2**20:
        raise PosterError(name, "corrupt", f"{path.stat().st_size / 2**20:.0f} MB is over the {MAX_UPLOAD_MB} MB limit")
    try:
        with Image.open(path) as header:  # reads the size only, not the pixels
            pixels = header.width * header.height
    except (UnidentifiedImageError, OSError):
        pixels = 0  # decode() names what is wrong with it
    if pixels > MAX_UPLOAD_PIXELS:
        raise PosterError(name, "corrupt", f"{pixels / 1e6:.0f} megapixels is over the {MAX_UPLOAD_PIXELS / 1e6:.0f} "
                                           "megapixel limit (a decompression bomb?)")
    return to_rgb(decode(path, name))


def expand_uploads(files: list[str]) -> list[tuple[str, Path]]:
    """(name, path) per image: uploaded images as they are, the images inside uploaded zips extracted."""
    items = []
    for file in files or []:
        file = Path(file)
        if file.suffix.lower() == ".zip":
            target = Path(tempfile.mkdtemp(prefix="posters_"))
            try:
                with zipfile.ZipFile(file) as archive:
                    for member in archive.infolist():
                        if not member.is_dir() and Path(member.filename).suffix.lower() in IMAGE_SUFFIXES \
                                and not member.filename.startswith("__MACOSX"):
                            out = target / f"{len(items):05d}{Path(member.filename).suffix.lower()}"
                            out.write_bytes(archive.read(member))
                            items.append((member.filename, out))
            except zipfile.BadZipFile:
                items.append((file.name, file))  # reported as not an image
        else:
            items.append((file.name, file))
    return items


class Page:
    """What the page's buttons call: the model folder's Predictor (LiteRT) for probabilities and Grad-CAM."""

    def __init__(self, paths: Paths):
        self.paths = paths

    def predictor(self, name: str):
        return load(resolve_model(name, self.paths), "litert")

    def one(self, name: str, upload: str | None, heatmaps: bool = True):
        """(label dict, bar figure, Grad-CAM overlays, genres above thresholds, status message)."""
        if not upload:
            return None, None, [], "", "Choose a poster first."
        predictor = self.predictor(name)
        try:
            image = fit_image(read_upload(upload), predictor.input_size, predictor.fit)
        except PosterError as exc:
            return None, None, [], "", f"**Error:** {exc}"
        probabilities, _ = predictor.probabilities([image])
        row = poster_row(upload, Path(upload).stem, probabilities[0], "", predictor.genres, predictor.thresholds)
        label = {g: float(p) for g, p in zip(predictor.genres, probabilities[0])}
        overlays = [(overlay(image, predictor.gradcam(image, genre)), f"{genre} ({p:.2f})")
                    for genre, p in row["top"]] if heatmaps else []
        above = ", ".join(row["above_threshold"]) or "none"
        return label, genre_bars(row, predictor), overlays, above, f"Predicted with `{name}`."

    def many(self, name: str, files: list[str] | None, adapt: bool = False):
        """(table, CSV path, status message): one row per poster; a bad file gets its error in its row."""
        items = expand_uploads(files)
        if not items:
            return pd.DataFrame(), None, "Upload images or a zip of images first."
        predictor = self.predictor(name)
        images, errors = [], {}
        for i, (original, path) in enumerate(items):
            try:  # decoded once (checked for size and bombs) and held at the network's input size
                images.append(fit_image(read_upload(path, original), predictor.input_size, predictor.fit))
            except PosterError as exc:
                errors[i] = str(exc)
        good = [original for i, (original, _) in enumerate(items) if i not in errors]
        posters = pd.DataFrame({"poster": images, "title": good})
        predictions = predictor.predict(posters, adapt_prior=adapt and len(good) >= MIN_POSTERS_TO_ADAPT) \
            if good else None
        predicted = iter(predictions.table.to_dict("records") if predictions else [])
        result = pd.DataFrame([{"poster": original, "error": errors[i]} if i in errors else
                               {**next(predicted), "poster": original} for i, (original, _) in enumerate(items)])
        csv = write_predictions(result.drop(columns="title", errors="ignore"),
                                Path(tempfile.mkdtemp(prefix="predictions_")) / "predictions.csv")
        status = f"{len(items)} posters, {len(errors)} could not be read."
        if adapt:
            adaptation = predictions.adaptation if predictions else None
            status += f" {adaptation.note}" if adaptation else \
                f" Under {MIN_POSTERS_TO_ADAPT} posters: the training genre mix is kept."
        return readable(result), str(csv), status


def readable(result: pd.DataFrame) -> pd.DataFrame:
    """The page's table: poster, top genres with probabilities, genres above thresholds, error."""
    view = pd.DataFrame({"poster": result.poster})
    view["top genres"] = result.get("top", pd.Series(index=result.index, dtype=object)).map(
        lambda top: ", ".join(f"{g} ({p:.2f})" for g, p in top) if isinstance(top, list) else "")
    view["above thresholds"] = result.get("above_threshold", pd.Series(index=result.index, dtype=object)).map(
        lambda genres: ", ".join(genres) if isinstance(genres, list) else "")
    view["error"] = result.get("error", pd.Series(index=result.index, dtype=object)).fillna("")
    return view


def overlay(image: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """The poster with a heatmap blended over it (jet colours), as uint8 RGB."""
    colours = colormaps["jet"](heatmap)[..., :3] * 255
    return (0.55 * image + 0.45 * colours).clip(0, 255).astype(np.uint8)


def build_app(paths: Paths | None = None, model: str | None = None):
    paths = paths or Paths.default()
    page = Page(paths)
    choices = model_choices(paths)
    if not choices:
        raise UserError(f"no model folder under {paths.models}: train one, or keep models/default")
    first = model if model in choices else choices[0]

    def summary(name):
        return model_summary(resolve_model(name, paths))

    with gr.Blocks(title="postergenre") as app:
        gr.Markdown("# postergenre: a movie's genres from its poster")
        with gr.Row():
            picker = gr.Dropdown(choices, value=first, label="model", scale=1)
            about = gr.Markdown(summary(first), elem_id="model-summary")
        picker.change(summary, picker, about)
        with gr.Tab("One poster"):
            with gr.Row():
                with gr.Column(scale=1):
                    poster = gr.File(label="poster (JPEG, PNG, WebP, ...)", file_types=["image"], type="filepath",
                                     elem_id="poster-upload")
                    heatmaps = gr.Checkbox(True, label="Grad-CAM heatmaps (slower)")
                    go = gr.Button("Predict genres", variant="primary", elem_id="predict-one")
                with gr.Column(scale=2):
                    status = gr.Markdown(elem_id="status-one")
                    label = gr.Label(num_top_classes=3, label="top genres", elem_id="top-genres")
                    above = gr.Textbox(label="genres above the tuned thresholds", elem_id="above-thresholds")
            bars = gr.Plot(label="every genre against its tuned threshold")
            cams = gr.Gallery(label="Grad-CAM: where the evidence for each top genre lies", columns=3,
                              elem_id="gradcam")
            go.click(page.one, [picker, poster, heatmaps], [label, bars, cams, above, status], api_name="predict_one")
        with gr.Tab("Many posters"):
            files = gr.File(label="posters or a zip of posters", file_count="multiple", type="filepath",
                            elem_id="many-upload")
            adapt = gr.Checkbox(False, label=f"adapt to this collection's genre mix ({MIN_POSTERS_TO_ADAPT} posters or more)")
            go_many = gr.Button("Predict all", variant="primary", elem_id="predict-many")
            status_many = gr.Markdown(elem_id="status-many")
            table = gr.Dataframe(label="one row per poster", elem_id="many-table")
            download = gr.File(label="download as CSV")
            go_many.click(page.many, [picker, files, adapt], [table, download, status_many],
                          api_name="predict_many")
    return app


def serve(paths: Paths | None = None, model: str | None = None, host: str = "127.0.0.1", port: int = 7860,
          inline: bool = False):
    """Start the page; never a public share link. inline: return at once (a notebook shows the page)."""
    app = build_app(paths, model)
    app.queue(default_concurrency_limit=4)
    return app.launch(server_name=host, server_port=port, share=False, inbrowser=False, prevent_thread_lock=inline,
                      max_file_size=f"{MAX_UPLOAD_MB}mb", show_error=True)
