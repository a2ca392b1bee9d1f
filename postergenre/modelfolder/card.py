"""A model card (models/<name>/README.md) in the Hugging Face form, written from the model folder's own files
(manifest.json, genres.json) by training and `ship`: never typed by hand, so it cannot drift from the model."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from ..data.io import atomic_write_bytes
from .layout import model_row, read_manifest, read_test_figures, read_test_figures_by_source, read_vocabulary

CARD_FILE = "README.md"
# IMDb's genres: the ones a model that learned from posters of other genres can never name are listed on its card
IMDB_GENRES = ("Action", "Adult", "Adventure", "Animation", "Biography", "Comedy", "Crime", "Documentary", "Drama",
               "Family", "Fantasy", "Film-Noir", "Game-Show", "History", "Horror", "Music", "Musical", "Mystery",
               "News", "Reality-TV", "Romance", "Sci-Fi", "Short", "Sport", "Talk-Show", "Thriller", "War", "Western")
CARD_METRICS = {"macro_ap": "macro AP", "micro_ap": "micro AP", "top3_hit_rate": "top-3 hit rate",
                "micro_f1@tuned": "micro-F1 (tuned thresholds)", "macro_f1@tuned": "macro-F1 (tuned thresholds)"}


def card_header(manifest: dict, name: str, figures: dict) -> dict:
    """The YAML header: what the Hub reads (library, task, tags, data, metrics)."""
    header = {"license": "apache-2.0", "library_name": "keras", "pipeline_tag": "image-classification",
              "tags": ["multi-label-classification", "movie-posters", "genre-classification", manifest["model"],
                       "litert"],
              "datasets": ["kaggle-movie-genre-from-its-poster"], "metrics": ["average_precision", "f1"]}
    test = figures.get(model_row(figures), {})
    if test:
        header["model-index"] = [{"name": name, "results": [{
            "task": {"type": "image-classification", "name": "multi-label genre classification"},
            "dataset": {"name": "movie posters (Kaggle, held-out test split)", "type": "kaggle-movie-genre-from-its-poster",
                        "split": "test"},
            "metrics": [{"type": key, "name": label, "value": round(test[key][0], 4)}
                        for key, label in CARD_METRICS.items() if key in test]}]}]
    return header


def model_card(folder: Path) -> str:
    """The card's text for a model folder."""
    folder = Path(folder)
    manifest, vocabulary = read_manifest(folder), read_vocabulary(folder)
    figures, test_posters = read_test_figures(folder, manifest)
    genres, counts = vocabulary["genres"], vocabulary.get("train_counts", {})
    config = manifest.get("config", {})
    train = vocabulary.get("sizes", {}).get("train") or manifest.get("train_posters")  # counts' own posters
    extra = vocabulary.get("train_only") or {}
    training = "fine-tuned" if config.get("fine_tune_epochs") else "frozen backbone, trained head"
    if manifest.get("members"):
        training = "a blend of " + " and ".join(
            f"`{m['name']}` ({m['model']}, {m['input_size'][0]}x{m['input_size'][1]}, weight {m['weight']:g})"
            for m in manifest["members"]) + ": their log-odds averaged with weights chosen on validation"
    sources_text = ", ".join(f"{name} ({entry.get('train', 0):,} training posters, rows hash `{entry['hash']}`)"
                             for name, entry in (manifest.get("sources") or {}).items()
                             if not entry.get("train_only"))
    header = yaml.safe_dump(card_header(manifest, folder.name, figures), sort_keys=False, allow_unicode=True)
    lines = [f"---\n{header}---", "",
             f"# {folder.name}: a movie's genres from its poster", "",
             f"Network: `{manifest['model']}` ({training}), one independent sigmoid per genre, made by "
             f"postergenre {manifest.get('versions', {}).get('postergenre', '')} on {manifest.get('created', '?')} "
             f"(git {str(manifest.get('git_commit', '?'))[:10]}, seed {manifest.get('seed')}). It runs on LiteRT "
             "(`model.tflite`) without TensorFlow: `postergenre predict POSTER --model " + str(folder.name) + "`."
             + _quantization(manifest),
             *_text_paragraph(manifest), "",
             "## Intended use", "",
             "Suggesting the genres of a film from its poster: a research tool and a demonstration of multi-label "
             "image classification. Not for decisions about people, and not a substitute for a film's own metadata.", "",
             f"## Genres it knows ({len(genres)})", "",
             "| genre | training posters | share |" + (" chosen by genre (training only) |" if extra else ""),
             "|---|---:|---:|" + ("---:|" if extra else "")]
    for genre in sorted(genres, key=lambda g: -counts.get(g, 0)):
        share = f"{counts[genre] / train:.1%}" if genre in counts and train else ""
        lines.append(f"| {genre} | {counts.get(genre, '')} | {share} |"
                     + (f" {extra['counts'].get(genre, 0)} |" if extra else ""))
    merged = {name for name, into in (vocabulary.get("rules") or {}).get("merge", {}).items() if into in genres}
    unknown = [g for g in IMDB_GENRES if g not in genres and g.replace("-", " ") not in genres and g not in merged]
    lines += ["", f"It never names a genre outside this list: {', '.join(unknown)}"
              + (f" ({', '.join(f'{k} is named {v}' for k, v in sorted(vocabulary['rules']['merge'].items()) if k in merged)})"
                 if merged else "") + ".", "",
              "## Training data and its bias", "",
              (f"{train:,} training posters" if train else "The training posters")
              + f" of {', '.join(manifest.get('data_files', [])[:1])} (the splits' data hash "
              f"`{manifest.get('data_hash')}`), "
              + (f"from {sources_text}, " if sources_text else "")
              + "split per poster, stratified by genre. "
              + (f"Trained also on {extra['posters']:,} posters chosen by genre "
                 f"({', '.join(f'{k}, {v:,}' for k, v in extra['sources'].items())}): they enter the training split "
                 "only, never validation, test, calibration, the thresholds, the prior above or any figure here, "
                 "since their genre mix is a choice, not a population. " if extra else "")
              + "They come from the Kaggle *Movie Genre from its Poster* "
              "data: IMDb thumbnails of mostly English-language films. The model learned that sample's genre mix "
              "(above) and its era; posters from other collections, other decades or other countries are out of "
              "its experience.", "",
              "## Evaluation", ""]
    model_key = model_row(figures)
    if figures.get(model_key):
        averaged = manifest.get("genres_averaged") or {}
        lines += [f"On {test_posters or 0:,} held-out test posters, with 95% bootstrap intervals, "
                  f"beside the constant guesses{_over(averaged.get('test'))}:", "", *_figures_table(figures, model_key)]
        for set_name, by_source in read_test_figures_by_source(folder, manifest).items():
            lines += ["", f"The posters of `{set_name}` alone{_over(averaged.get(set_name))}:", "",
                      *_figures_table(by_source, model_key)]
    else:
        lines.append("Not evaluated on the test split yet: `postergenre evaluate --model " + folder.name + "`.")
    validation = manifest.get("validation_metrics")
    if validation:
        lines += ["", "On the validation split (which tuned the thresholds and the calibration), the image network: "
                  + ", ".join(f"{label} {validation[k]:.3f}" for k, label in
                              {"macro_ap": "macro AP", "top3_hit_rate": "top-3 hit rate"}.items() if k in validation)
                  + "."]
    lines += ["", "## Limitations", "",
              "- The genre mix: the probabilities follow the training mix; for a collection with another mix, "
              "`--adapt-prior` re-weights them (estimated from 50 posters or more, or given with `--prior`).",
              "- Posters from other collections: a model of this sample only ties a constant guess on some of them; "
              "measure on your own posters before trusting it there.",
              "- A poster shows marketing, not the film: the words and faces on it mislead as often as they help.",
              f"- Input: RGB posters fitted to {config.get('input_size', manifest.get('input_size'))} pixels "
              f"(height, width) by `{manifest.get('fit', 'crop')}`; calibration: "
              f"{(manifest.get('calibration') or {}).get('method', 'none')}.", "",
              "## How it was made", "",
              *_recipe_lines(manifest, folder.name),
              "```json", json.dumps(config, indent=1), "```", "",
              "Versions: " + ", ".join(f"{k} {v}" for k, v in manifest.get("versions", {}).items()) + ".", ""]
    return "\n".join(lines)


def _quantization(manifest: dict) -> str:
    quantization = manifest.get("quantization") or {}
    lean = manifest.get("lean") or {}
    leaner = (f" The folder is lean: `model.tflite` is its only whole network; of the members' Keras networks only "
              f"`{lean['gradcam_member']}`'s is kept, to draw Grad-CAM ({', '.join(lean['left_out']) or 'nothing'} "
              f"left out; `make default` rebuilds them)"
              + (f", and the text head's weights are stored as {lean['text_head_weights']}"
                 if lean.get("text_head_weights") else "") + "." if lean else "")
    if quantization.get("mode", "none") == "none":
        return " Its `model.tflite` holds float32 weights." + leaner
    return (f" Its `model.tflite` is quantized ({quantization['mode']}, {quantization['tflite_bytes'] / 2**20:.1f} MB"
            + (f"; activation ranges from {quantization['representative_posters']} training posters"
               if quantization.get("representative_posters") else "") + "); the figures below are its own." + leaner)


def _recipe_lines(manifest: dict, name: str) -> list[str]:
    """A model built from a recipe shows it whole, with the command that rebuilds it."""
    recipe = manifest.get("recipe")
    if not recipe:
        return []
    lock = recipe.get("lock") or {}
    return [f"Built from the recipe `{recipe['path']}` (sha256 `{recipe['hash']}`"
            + (f"; environment `{lock['file']}` sha256 `{lock['hash']}`" if lock.get("hash") else "")
            + f"): `postergenre rebuild {recipe['path']}` makes it again.", "",
            "```toml", recipe["text"].rstrip(), "```", "", "Its settings as the training recorded them:", ""]


def _text_paragraph(manifest: dict) -> list[str]:
    """What the card says about a text head: how the words are read, and what they add on validation."""
    text = manifest.get("text")
    if not text:
        return []
    ocr, validation = text["ocr"], text["validation"]
    figures = "; ".join(f"{k} {v['macro_ap']:.3f} / {v['top3_hit_rate']:.3f}" for k, v in validation.items())
    image_only = manifest.get("test_metrics_image_only")
    test = ""
    if image_only and manifest.get("test_metrics"):
        fused, alone = (next(v for k, v in t.items() if not k.startswith("baseline")) for t in
                        (manifest["test_metrics"], image_only))
        test = (f" On the test split, macro AP {alone['macro_ap'][0]:.3f} without its words and "
                f"{fused['macro_ap'][0]:.3f} with them; top-3 {alone['top3_hit_rate'][0]:.3f} and "
                f"{fused['top3_hit_rate'][0]:.3f}.")
    return ["", f"It also reads the words printed on the poster ({ocr['package']} {ocr['version']}, the poster at "
                f"{ocr['side']} px on its long side, lines under confidence {ocr['min_score']} dropped) and adds a "
                f"TF-IDF text head's evidence to the image's logits (weight {text['weight']}, chosen on validation). "
                f"Validation macro AP / top-3, image, text, fused: {figures}.{test} A poster with no readable words "
                f"is predicted from its image alone; `--no-text` turns the words off."]


def _over(averaged: dict | None) -> str:
    """'; macro figures over the 17 genres present of 23'"""
    return f"; macro figures over the {averaged['count']} genres present of {averaged['of']}" if averaged else ""


def _figures_table(figures: dict, model_key: str) -> list[str]:
    lines = ["| | " + " | ".join(CARD_METRICS.values()) + " |", "|---" * (len(CARD_METRICS) + 1) + "|"]
    for key, values in figures.items():
        cells = [f"{values[m][0]:.3f} [{values[m][1]:.3f}, {values[m][2]:.3f}]" if m in values else ""
                 for m in CARD_METRICS]
        lines.append(f"| {'**' + key + '**' if key == model_key else key} | " + " | ".join(cells) + " |")
    return lines


def write_model_card(folder: Path) -> Path:
    path = Path(folder) / CARD_FILE
    atomic_write_bytes(path, model_card(folder).encode())
    return path
