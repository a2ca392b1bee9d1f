"""`postergenre serve`: a web page in front of the shipped model (Gradio), offline, on 127.0.0.1 by default.

One poster: the poster itself, its top genres, every genre's probability against its tuned threshold (the figure
of notebook 07), a Grad-CAM overlay per top genre at the poster's own shape, the genres above the thresholds, and
a few posters of the test split to try. Many posters (images or a zip): a table, downloadable as CSV, optionally
adapted to the collection's genre mix. Predictions run on LiteRT through the model folder's Predictor; Grad-CAM
needs the Keras network's gradients, so its network is loaded and traced when the server starts, not on the first click.
Every file a request writes lives in one folder of the server's, removed when the request ends (a zip's posters) or
when the server stops (uploads, CSVs).
"""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import uuid
import weakref
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from matplotlib import colormaps
from PIL import Image

from ..config import MIN_POSTERS_TO_ADAPT, Paths, UserError, describe
from ..data.images import PosterError, decode, fit_image, to_rgb
from ..data.io import read_csv
from ..data.photo import Found, find_poster, poster_in
from ..modelfolder.layout import model_names, model_row, read_manifest, read_test_figures, resolve_model
from ..inference.predict import IMAGE_SUFFIXES, write_predictions
from ..inference.predictor import load, poster_row
from .figures import genre_bars_html

MAX_UPLOAD_MB = 20
MAX_UPLOAD_PIXELS = 25_000_000  # a poster is about 0.1 megapixels; a larger image is refused before decoding
MAX_POSTERS_PER_REQUEST = 2_000
EXAMPLES = 6  # posters of the test split offered on the page
# Up to 4 requests run at once (the queue's limit) on the machine's cores, so each request's TensorFlow work (its
# Grad-CAM pass) runs on one thread: 8 clients' p95 2.1 s against 2.4 s with TensorFlow's own thread counts on 2
# cores (benchmarks/bench_serve.py --gradcam). Set either variable to choose otherwise.
TENSORFLOW_THREADS = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
OVERLAY_SCALE = 2  # overlays drawn at twice the network's input size (224x152 -> 448x304), the poster's shape
KEEP_CSVS = 20  # the newest prediction CSVs kept for download; older ones are removed
PAGE_CSS = "#gradcam .thumbnail-item { aspect-ratio: 2 / 3; }"  # the gallery draws squares unless told


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
    figures, _ = read_test_figures(folder, manifest)
    name = f"**{folder.name}** ({manifest.get('model')})"
    if not figures:
        return f"{name}: not evaluated on the test split yet (`postergenre evaluate --model {folder.name}`)"
    model, baseline = figures[model_row(figures)], figures.get("baseline: 3 most frequent genres", {})
    text = (f"{name} on the test split: macro AP **{model['macro_ap'][0]:.3f}**, top-3 hit rate "
            f"**{model['top3_hit_rate'][0]:.3f}**")
    if baseline:
        text += (f"; the constant guess (the 3 most frequent genres): macro AP {baseline['macro_ap'][0]:.3f}, "
                 f"top-3 {baseline['top3_hit_rate'][0]:.3f}")
    return text


def markdown_escaped(text: str) -> str:
    """Text shown as itself in a Markdown component: a file name like `[click](evil.html).jpg` stays a name."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~])", r"\\\1", text)


def read_upload(path: str | Path, name: str | None = None) -> Image.Image:
    """An uploaded file as an RGB image, or PosterError naming it: too large, not an image, truncated, a bomb."""
    path = Path(path)
    name = name or path.name
    if not path.is_file() or path.stat().st_size == 0:
        raise PosterError(name, "corrupt", "the upload is empty")
    if path.stat().st_size > MAX_UPLOAD_MB * 2**20:
        raise PosterError(name, "corrupt", f"{path.stat().st_size / 2**20:.0f} MB is over the {MAX_UPLOAD_MB} MB limit")
    return to_rgb(decode(path, name, max_pixels=MAX_UPLOAD_PIXELS))


@dataclass
class Upload:
    """One poster of a request: its name as the user knows it, the file to read, or why there is none."""
    name: str
    path: Path | None
    error: str = ""
    note: bool = False  # a line about the request (the cap on posters), no poster of its own


def expand_uploads(files: list[str] | None, folder: Path) -> list[Upload]:
    """One Upload per poster: uploaded images as they are; the images inside uploaded zips extracted into `folder`
    after their declared sizes are checked (a zip bomb is refused unread); a zip inside a zip, or a member that
    cannot be read, is an Upload with its error. Files in a zip without an image name are skipped."""
    items: list[Upload] = []
    for file in map(Path, files or []):
        if file.suffix.lower() != ".zip":
            items.append(Upload(file.name, file))
            continue
        try:
            with zipfile.ZipFile(file) as archive:
                for member in archive.infolist():
                    if len(items) >= MAX_POSTERS_PER_REQUEST:
                        items.append(Upload(file.name, None, f"{file.name}: more than {MAX_POSTERS_PER_REQUEST} "
                                                             "posters in one request; the rest were not read",
                                            note=True))
                        break
                    items += _zip_member(archive, member, folder, len(items))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
            items.append(Upload(file.name, None, f"{file.name}: cannot read the zip ({describe(exc)})"))
    return items


def _zip_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, folder: Path, number: int) -> list[Upload]:
    name, suffix = member.filename, Path(member.filename).suffix.lower()
    if member.is_dir() or name.startswith("__MACOSX") or suffix not in (*IMAGE_SUFFIXES, ".zip"):
        return []
    if suffix == ".zip":
        return [Upload(name, None, f"{name}: a zip inside a zip is not opened; upload it on its own")]
    if member.file_size > MAX_UPLOAD_MB * 2**20:
        return [Upload(name, None, f"{name}: {member.file_size / 2**20:,.0f} MB once extracted, over the "
                                   f"{MAX_UPLOAD_MB} MB limit (not extracted)")]
    try:
        with archive.open(member) as source:  # reads at most the declared size, and checks the CRC
            data = source.read(MAX_UPLOAD_MB * 2**20 + 1)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, ValueError) as exc:
        return [Upload(name, None, f"{name}: cannot extract it from the zip ({describe(exc)})")]
    out = folder / f"{number:05d}{suffix}"
    out.write_bytes(data)
    return [Upload(name, out)]


def example_posters(paths: Paths, folder: Path, count: int = EXAMPLES) -> list[Path]:
    """A few posters of the project's test split, copied into `folder` (the page may serve only its own files);
    none when the project has no test split yet."""
    try:
        test = read_csv(paths.split_csv("test"), ["poster_path"])
    except UserError:
        return []
    found = [Path(p) for p in test.poster_path if p and Path(p).is_file()]
    chosen = found[:: max(1, len(found) // count)][:count]
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(p, folder / p.name)) for p in chosen]


class Page:
    """What the page's buttons call: the model folder's Predictor (LiteRT) for probabilities and Grad-CAM.

    workspace: the one folder this page writes to (a zip's posters for the length of a request, the CSVs to
    download); close() removes it.
    """

    def __init__(self, paths: Paths, workspace: Path | None = None, text: bool = True):
        self.paths, self.text = paths, text
        self.workspace = Path(workspace or tempfile.mkdtemp(prefix="postergenre_serve_"))
        self.workspace.mkdir(parents=True, exist_ok=True)
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.workspace, True)  # also at interpreter exit

    def predictor(self, name: str, find: bool = True):
        """find: look for the poster in a photo of it (the page's switch, per picture)."""
        return load(resolve_model(name, self.paths), "litert", text=self.text, find_poster=find)

    def warm(self, name: str) -> None:
        """Load the Keras network and trace Grad-CAM's gradient graph now, so the first heatmap is as fast as any."""
        predictor = self.predictor(name)
        height, width = predictor.input_size
        predictor.gradcam(np.zeros((height, width, 3), np.uint8), [0, 1, 2][:len(predictor.genres)])

    def one(self, name: str, upload: str | None, heatmaps: bool = True, camera: str | None = None,
            find: bool = True):
        """(label dict, bars (HTML), Grad-CAM overlays, genres above thresholds, the poster as the model saw it,
        status message, the words read from it, the photo with the poster found in it outlined (None when the
        picture was taken whole)). camera: a photo from the camera, taken when no file is given; find: look for the
        poster in a photo and straighten it (the page then shows that crop beside the photo)."""
        upload = upload or camera
        if not upload:
            return None, "", [], "", None, "Choose a poster or take a photo of one first.", "", None
        predictor = self.predictor(name, find)
        try:
            poster = read_upload(upload)
        except PosterError as exc:
            return None, "", [], "", None, f"**Error:** {markdown_escaped(str(exc))}", "", None
        found = find_poster(poster) if predictor.find_poster else Found(poster, None)
        photo = outlined(poster, found.corners) if found.corners is not None else None
        poster = found.image
        image = fit_image(poster, predictor.input_size, predictor.fit)
        texts = predictor.read_words([poster]) if predictor.text_head is not None else None
        probabilities, _ = predictor.probabilities([image], texts=texts)
        row = poster_row(upload, Path(upload).stem, probabilities[0], "", predictor.genres, predictor.thresholds)
        label = {g: float(p) for g, p in zip(predictor.genres, probabilities[0])}
        overlays = []
        if heatmaps:
            maps = predictor.gradcam(image, [genre for genre, _ in row["top"]])
            overlays = [(overlay(image, heatmap), f"{genre} ({p:.2f})") for heatmap, (genre, p) in zip(maps, row["top"])]
        above = ", ".join(row["above_threshold"]) or "none"
        crop = " The poster was found in the photo (outlined) and straightened: the picture shows what the model " \
            "saw. Untick *find the poster in a photo* to take the picture whole." if found.corners is not None else ""
        member = predictor.gradcam_drawn_by if overlays else None
        drawn = f" Heatmaps drawn by its member network `{member}`." if member else ""
        return (label, genre_bars_html(row, predictor), overlays, above, shown(poster),
                f"Predicted with `{name}`.{crop}{drawn}", words_shown(texts), photo)

    def many(self, name: str, files: list[str] | None, adapt: bool = False, find: bool = True):
        """(table, CSV path, status message): one row per poster; a bad file gets its error in its row."""
        with tempfile.TemporaryDirectory(prefix="request_", dir=self.workspace) as extracted:
            items = expand_uploads(files, Path(extracted))
            if not items:
                return pd.DataFrame(), None, "Upload images or a zip of images first."
            predictor = self.predictor(name, find)
            images, errors = [], {}
            for i, item in enumerate(items):
                if item.error:  # refused while unpacking its zip
                    errors[i] = item.error
                    continue
                try:  # decoded once (checked for size and bombs) and held at the network's input size
                    picture = read_upload(item.path, item.name)
                    picture = poster_in(picture) if predictor.find_poster else picture
                    images.append(fit_image(picture, predictor.input_size, predictor.fit))
                except PosterError as exc:
                    errors[i] = str(exc)
            good = [item for i, item in enumerate(items) if i not in errors]
            texts = predictor.read_words([item.path for item in good]) if predictor.text_head is not None and good \
                else None  # read from the whole poster while its file is still here
        posters = pd.DataFrame({"poster": images, "title": [item.name for item in good]})
        predictions = predictor.predict(posters, adapt_prior=adapt and len(good) >= MIN_POSTERS_TO_ADAPT,
                                        texts=texts) if good else None
        predicted = iter(predictions.table.to_dict("records") if predictions else [])
        result = pd.DataFrame([{"poster": item.name, "error": errors[i]} if i in errors else
                               {**next(predicted), "poster": item.name} for i, item in enumerate(items)])
        csv = write_predictions(result.drop(columns="title", errors="ignore"), self._new_csv(), words=True)
        notes = sum(item.note for item in items)
        status = f"{len(items) - notes} posters, {len(errors) - notes} could not be read." + \
            (f" More than {MAX_POSTERS_PER_REQUEST} posters: the rest were not read." if notes else "")
        if adapt:
            adaptation = predictions.adaptation if predictions else None
            status += f" {adaptation.note}" if adaptation else \
                f" Under {MIN_POSTERS_TO_ADAPT} posters: the training genre mix is kept."
        return readable(result), str(csv), status

    def _new_csv(self) -> Path:
        folder = self.workspace / "predictions"
        folder.mkdir(exist_ok=True)
        for old in sorted(folder.glob("*/predictions.csv"), key=lambda f: f.stat().st_mtime)[:-KEEP_CSVS or None]:
            shutil.rmtree(old.parent, ignore_errors=True)
        return folder / uuid.uuid4().hex / "predictions.csv"

    def close(self) -> None:
        self._cleanup()


def readable(result: pd.DataFrame) -> pd.DataFrame:
    """The page's table: poster, top genres with probabilities, genres above thresholds, error."""
    view = pd.DataFrame({"poster": result.poster})
    view["top genres"] = result.get("top", pd.Series(index=result.index, dtype=object)).map(
        lambda top: ", ".join(f"{g} ({p:.2f})" for g, p in top) if isinstance(top, list) else "")
    view["above thresholds"] = result.get("above_threshold", pd.Series(index=result.index, dtype=object)).map(
        lambda genres: ", ".join(genres) if isinstance(genres, list) else "")
    if "words" in result:
        view["words read"] = result["words"].fillna("")
    view["error"] = result.get("error", pd.Series(index=result.index, dtype=object)).fillna("")
    return view


def words_shown(texts) -> str:
    """The words read from one poster, for the page: '' for a model without a text head."""
    if not texts:
        return ""
    text = texts[0]
    if text.text.strip():
        return text.text
    return f"(no words read{': ' + text.error if text.error else ''}; the genres come from the image alone)"


def overlay(image: np.ndarray, heatmap: np.ndarray, scale: int = OVERLAY_SCALE) -> np.ndarray:
    """The poster as the network saw it (about 2:3) with a heatmap blended over it (jet colours), as uint8 RGB,
    enlarged `scale` times for the page."""
    colours = colormaps["jet"](heatmap)[..., :3] * 255
    blended = Image.fromarray((0.55 * image + 0.45 * colours).clip(0, 255).astype(np.uint8))
    return np.asarray(blended.resize((blended.width * scale, blended.height * scale), Image.BILINEAR))


def outlined(photo: Image.Image, corners: np.ndarray, height: int = 450) -> np.ndarray:
    """The photo for the page, at most `height` pixels tall, with the poster found in it outlined in green."""
    picture = shown(photo, height)
    scale = picture.shape[0] / photo.height
    outline = np.round(np.asarray(corners) * scale).astype(np.int32)
    return cv2.polylines(picture.copy(), [outline], True, (44, 160, 44), max(2, round(picture.shape[0] / 150)),
                         cv2.LINE_AA)


def shown(poster: Image.Image, height: int = 450) -> np.ndarray:
    """The uploaded poster for the page, at most `height` pixels tall, its shape kept."""
    poster = poster.copy()
    poster.thumbnail((height * 4, height))
    return np.asarray(poster)


def build_app(paths: Paths | None = None, model: str | None = None, page: Page | None = None):
    import gradio as gr  # here, not at the top: serve() first points Gradio's upload folder into the page's workspace
    paths = paths or Paths.default()
    page = page or Page(paths)
    choices = model_choices(paths)
    if not choices:
        raise UserError(f"no model folder under {paths.models}: train one, or keep models/default")
    first = model if model in choices else choices[0]
    examples = example_posters(paths, page.workspace / "examples")

    def summary(name):
        return model_summary(resolve_model(name, paths))

    with gr.Blocks(title="postergenre", delete_cache=(600, 3600)) as app:
        gr.Markdown("# postergenre: a movie's genres from its poster")
        with gr.Row():
            picker = gr.Dropdown(choices, value=first, label="model", scale=1)
            about = gr.Markdown(summary(first), elem_id="model-summary")
        picker.change(summary, picker, about)
        with gr.Tab("One poster"):
            with gr.Row():
                with gr.Column(scale=1):
                    poster = gr.File(label="poster (JPEG, PNG, WebP, HEIC, ...)",
                                     file_types=["image", ".heic", ".heif"], type="filepath", elem_id="poster-upload")
                    camera = gr.Image(label="or take a photo of a poster", sources=["webcam"], type="filepath",
                                      elem_id="poster-camera")
                    if examples:
                        gr.Examples([[str(p)] for p in examples], inputs=[poster], label="or try a poster of the "
                                    "test split", elem_id="examples", examples_per_page=EXAMPLES)
                    heatmaps = gr.Checkbox(True, label="Grad-CAM heatmaps")
                    find = gr.Checkbox(True, label="find the poster in a photo (untick: take the picture whole)",
                                       elem_id="find-poster")
                    go = gr.Button("Predict genres", variant="primary", elem_id="predict-one")
                    shown_poster = gr.Image(label="the poster as the model saw it", type="numpy", interactive=False,
                                            height=360,
                                            format="jpeg", elem_id="poster-shown")
                    photo = gr.Image(label="the photo, the poster found in it outlined", type="numpy",
                                     interactive=False, height=360, format="jpeg", elem_id="photo-outlined")
                with gr.Column(scale=2):
                    status = gr.Markdown(elem_id="status-one")
                    label = gr.Label(num_top_classes=3, label="top genres", elem_id="top-genres")
                    above = gr.Textbox(label="genres above the tuned thresholds", elem_id="above-thresholds")
                    words = gr.Textbox(label="words read on the poster (a model with a text head)",
                                       elem_id="words-read")
                    cams = gr.Gallery(label="Grad-CAM: where the evidence for each top genre lies", columns=3,
                                      object_fit="contain", height="auto", format="jpeg", elem_id="gradcam")
                    gr.Markdown("**every genre against its tuned threshold**")
                    bars = gr.HTML(elem_id="genre-bars")
            go.click(page.one, [picker, poster, heatmaps, camera, find],
                     [label, bars, cams, above, shown_poster, status, words, photo], api_name="predict_one")
        with gr.Tab("Many posters"):
            files = gr.File(label="posters or a zip of posters", file_count="multiple", type="filepath",
                            elem_id="many-upload")
            adapt = gr.Checkbox(False, label=f"adapt to this collection's genre mix ({MIN_POSTERS_TO_ADAPT} posters or more)")
            find_many = gr.Checkbox(True, label="find the poster in each photo (untick: take every picture whole)")
            go_many = gr.Button("Predict all", variant="primary", elem_id="predict-many")
            status_many = gr.Markdown(elem_id="status-many")
            table = gr.Dataframe(label="one row per poster", elem_id="many-table")
            download = gr.File(label="download as CSV")
            go_many.click(page.many, [picker, files, adapt, find_many], [table, download, status_many],
                          api_name="predict_many")
    return app, page, first


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # Gradio's main loop closes the server on it; serve() then removes the workspace


def serve(paths: Paths | None = None, model: str | None = None, host: str = "127.0.0.1", port: int = 7860,
          inline: bool = False, heatmaps: bool = True, text: bool = True):
    """Start the page; never a public share link. inline: return at once (a notebook shows the page).
    heatmaps: load and trace the Grad-CAM network now (TensorFlow: benchmarks/bench_serve.py measures the cost), so no click waits for it."""
    paths = paths or Paths.default()
    page = Page(paths, text=text)
    os.environ["GRADIO_TEMP_DIR"] = str(page.workspace / "uploads")  # read when Gradio is first imported
    for variable in TENSORFLOW_THREADS:  # read when TensorFlow starts (page.warm): see TENSORFLOW_THREADS
        os.environ.setdefault(variable, "1")
    app, page, first = build_app(paths, model, page)
    print(f"postergenre serve: uploads and results kept in {page.workspace} until it stops", flush=True)
    if heatmaps:
        print("postergenre serve: loading the Grad-CAM network...", flush=True)
        page.warm(first)
    app.queue(default_concurrency_limit=4)
    if not inline:  # a stop (Ctrl-C or SIGTERM) closes the server and removes the workspace
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        return app.launch(server_name=host, server_port=port, share=False, inbrowser=False, prevent_thread_lock=inline,
                          max_file_size=f"{MAX_UPLOAD_MB}mb", show_error=True, allowed_paths=[str(page.workspace)],
                          css=PAGE_CSS)
    finally:
        if not inline:
            page.close()
