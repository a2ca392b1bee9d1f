"""Stage 6: honest multi-label evaluation of a trained model.

Every figure comes with a 95% bias-corrected bootstrap interval and sits beside two
constant baselines on the same posters: the k most frequent training genres,
and the training prior used as scores.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import DEFAULT_PRIOR_ESTIMATOR, Paths, UserError, VocabularyRules
from ..data.encode import canonical_genre
from ..data.get_data import read_folder
from ..data.io import read_csv, write_json
from ..modelfolder.card import CARD_FILE, write_model_card
from ..modelfolder.layout import model_names, resolve_model
from ..inference.predictor import load
from ..text.head import has_text_head
from ..scoring import calibration, metrics
from .figures import evaluation_figures

BASELINE_TOPK = "baseline: 3 most frequent genres"
BASELINE_PRIOR = "baseline: training prior"


def figures(y, s, t) -> dict:
    """Every metric that gets a bootstrap interval, for labels y, scores s and per-genre thresholds t."""
    at_half, tuned = metrics.fast_threshold_metrics(y, s, 0.5), metrics.fast_threshold_metrics(y, s, t)
    ap = metrics.fast_average_precisions(y, s)
    return {"macro_ap": ap["macro"], "micro_ap": ap["micro"], "weighted_ap": ap["weighted"],
            "top3_hit_rate": metrics.top_k_hit_rate(y, s, 3),
            "top3_count": metrics.top_k_count(y, s, 3),
            "top_n_accuracy": metrics.top_n_accuracy(y, s),
            "precision_at_1": metrics.precision_at_k(y, s, 1),
            "precision_at_3": metrics.precision_at_k(y, s, 3),
            "micro_f1@0.5": at_half["micro_f1"], "macro_f1@0.5": at_half["macro_f1"],
            "micro_f1@tuned": tuned["micro_f1"], "macro_f1@tuned": tuned["macro_f1"],
            "samples_f1@tuned": tuned["samples_f1"],
            "hamming_loss@0.5": at_half["hamming_loss"], "hamming_loss@tuned": tuned["hamming_loss"]}


def map_labels(frame: pd.DataFrame, vocabulary: dict) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """Labels of `frame` (a `genres` column) in the model's vocabulary.

    Names go through the model's rules (case, synonyms, merges); genres the model does not know
    are listed and left out, and so are posters with none of the model's genres.
    """
    genres = vocabulary["genres"]
    saved = vocabulary.get("rules") or {}
    rules = VocabularyRules(**{k: v for k, v in saved.items() if k in VocabularyRules.__dataclass_fields__})
    lookup = {g.lower(): g for g in genres}
    unknown: dict[str, int] = {}
    rows = []
    for text in frame.genres.fillna(""):
        known = set()
        for raw in filter(None, (t.strip() for t in str(text).split("|"))):
            name = canonical_genre(raw, rules)
            if name is not None and name.lower() in lookup:
                known.add(lookup[name.lower()])
            elif name is not None:
                unknown[raw] = unknown.get(raw, 0) + 1
        rows.append([int(g in known) for g in genres])
    labels = np.array(rows, dtype=np.int8).reshape(len(frame), len(genres))
    keep = labels.sum(axis=1) > 0
    info = {"posters": int(len(frame)), "posters_without_known_genres": int((~keep).sum()),
            "unknown_genres": dict(sorted(unknown.items(), key=lambda kv: -kv[1]))}
    return frame[keep].reset_index(drop=True), labels[keep], info


def load_eval_data(data: str | Path | None, paths: Paths) -> tuple[pd.DataFrame, str]:
    """The posters to evaluate: a split CSV, a poster folder (labels.csv + images/), or the test split."""
    if data is None:
        return read_csv(paths.split_csv("test"), ["poster_path", "genres"],
                        hint=" (run `postergenre encode` first)"), "test"
    data = Path(data)
    if data.is_dir() or data.name == "labels.csv":
        rows = read_folder(data)
        frame = pd.DataFrame(rows.movies)
        missing = frame.poster_path.eq("")
        if missing.any():
            print(f"warning: {int(missing.sum())} poster(s) listed in labels.csv have no image; left out")
        name = data.name if data.is_dir() else data.parent.name
        return frame[~missing].reset_index(drop=True), name
    return read_csv(data, ["poster_path", "genres"]), data.stem


def of_source(frame: pd.DataFrame, set_name: str, source: str | None, where) -> tuple[pd.DataFrame, str]:
    """Only the posters of one source (a merged project's test split holds several), named <set>_<source>."""
    if source is None:
        return frame, set_name
    sources = sorted(frame["source"].unique()) if "source" in frame else []
    if source not in sources:
        raise UserError(f"{where}: no poster of source {source!r} (sources there: {', '.join(sources) or 'none'})")
    return frame[frame["source"] == source].reset_index(drop=True), f"{set_name}_{source}"


def bootstrap(y_true, score_sets: dict, thresholds: dict, n_boot: int = 200, seed: int = 0) -> dict:
    """{model: {metric: [value, low, high]}}: 95% bias-corrected percentile intervals over resampled posters.

    Ranking metrics such as AP read higher on a resample than on the full set (a poster drawn twice ties
    with itself), by about one standard error for a weak model; a plain percentile interval can then miss
    the full-set value. Each interval is shifted by that bias (mean of resamples minus full-set value).
    """
    rng = np.random.default_rng(seed)
    n = len(y_true)
    samples = {name: [] for name in score_sets}
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        for name, scores in score_sets.items():
            samples[name].append(figures(y_true[idx], scores[idx], thresholds[name]))
    result = {}
    for name, scores in score_sets.items():
        point = figures(y_true, scores, thresholds[name])
        result[name] = {}
        for metric in point:
            values = np.array([sample[metric] for sample in samples[name]], dtype=float)
            bias = np.nanmean(values) - point[metric]
            low, high = np.nanpercentile(values, [2.5, 97.5]) - bias
            result[name][metric] = [float(point[metric]), float(low), float(high)]
    return result


def evaluate(model: str | Path, data: str | Path | None = None, paths: Paths | None = None, n_boot: int = 200,
             figures: bool = True, progress: bool = True, adapt_prior: bool = False, prior: str | Path | None = None,
             estimator: str = DEFAULT_PRIOR_ESTIMATOR, source: str | None = None, text: bool = True,
             find_poster: bool = True) -> dict:
    """Evaluate one model folder; writes eval_<set>.json, eval_<set>.md and figures into it.

    source: only the posters of that source (for a project merged from several), as set <set>_<source>;
    without it, posters of several sources are also evaluated source by source (`by_source`, and a file each).

    adapt_prior / prior: also score the model adapted to the collection's genre mix (estimated from its
    unlabelled posters, or the mix in the genre,share CSV `prior`), as a row of its own.
    text: a model with a text head reads the posters' words (cached in data/cache/text); text=False scores its
    image alone, as set <set>_image.
    """
    paths = paths or Paths.default()
    folder = resolve_model(model, paths)
    trained = load(folder, text=text, text_cache=paths.cache / "text", find_poster=find_poster)
    posters, set_name = load_eval_data(data, paths)
    posters, set_name = of_source(posters, set_name, source, data or paths.split_csv("test"))
    if not text and has_text_head(folder):
        set_name = f"{set_name}_image"
    frame, y_true, mapping = map_labels(posters, trained.vocabulary)
    if len(frame) == 0:
        found = ", ".join(mapping["unknown_genres"]) or "none"
        raise UserError(f"{data or paths.split_csv('test')}: no poster has any of the model's genres (found: "
                        f"{found}; the model knows {', '.join(trained.genres)})")
    raw, scores = trained.scores(frame, progress=progress)
    options = dict(n_boot=n_boot, adapt_prior=adapt_prior, prior=prior, estimator=estimator)
    sources = sorted(frame["source"].unique()) if "source" in frame and source is None else []
    by_source, genres_by_source = {}, {}
    if len(sources) > 1:  # a merged project: each source's posters on their own too, beside their constant guesses
        for s in sources:  # the posters scored once: each source's rows of the same scores
            rows = (frame["source"] == s).to_numpy()
            mapped = map_labels(posters[posters["source"] == s], trained.vocabulary)[2]
            part, _ = scored_set(trained, frame[rows].reset_index(drop=True), y_true[rows], raw[rows], scores[rows],
                              f"{set_name}_{s}", mapped, **options)
            write_result(part, trained)
            by_source[part["set"]] = part["metrics"]
            genres_by_source[part["set"]] = part["genres_averaged"]
    result, per_genre = scored_set(trained, frame, y_true, raw, scores, set_name, mapping, **options)
    result["text"] = trained.text_head is not None
    if by_source:
        result["by_source"], result["genres_averaged_by_source"] = by_source, genres_by_source
    write_result(result, trained)
    if figures:
        evaluation_figures(frame, y_true, scores, trained, per_genre, trained.folder / f"figures_{set_name}", raw)
    return result


def scored_set(trained, frame, y_true, raw, scores, set_name: str, mapping: dict, n_boot: int, adapt_prior: bool,
               prior, estimator: str) -> tuple[dict, pd.DataFrame]:
    """The evaluation of one set of scored posters: the model and the constant baselines with bootstrap
    intervals, the adapted model when asked, calibration and per-genre figures; and the per-genre table."""
    train_prior = trained.train_prior
    name = trained.folder.name
    score_sets = {name: scores,
                  BASELINE_TOPK: metrics.constant_scores(train_prior[None, :], len(frame), k=3),
                  BASELINE_PRIOR: metrics.constant_scores(train_prior[None, :], len(frame), k=None)}
    # For a constant scorer the F1-optimal per-genre decision is to always predict the genre, so the
    # prior baseline's "tuned" thresholds are the prior itself; the top-3 baseline guesses its 3 genres.
    thresholds = {name: trained.thresholds, BASELINE_TOPK: np.full(len(train_prior), 0.5),
                  BASELINE_PRIOR: train_prior}
    adaptation = None
    if adapt_prior or prior is not None:
        adaptation = trained.adapt(scores, prior, estimator)
        adapted_name = f"{name} (adapted: {adaptation.source})"
        score_sets[adapted_name], thresholds[adapted_name] = adaptation.probabilities, adaptation.thresholds
        print(f"{name}: {adaptation.note}")
        print(adaptation.mix_table(y_true.mean(axis=0)).to_string(index=False))
    summary = bootstrap(y_true, score_sets, thresholds, n_boot=n_boot)
    per_genre = pd.DataFrame({"genre": trained.genres, "positives": y_true.sum(axis=0),
                              "prevalence": y_true.mean(axis=0), "train_share": train_prior, "ap": metrics.per_genre_ap(y_true, scores),
                              "roc_auc": metrics.per_genre_auc(y_true, scores),
                              "threshold": trained.thresholds})
    result = {"model": name, "model_folder": str(trained.folder), "set": set_name,
              "posters_evaluated": int(len(frame)), "mapping": mapping, "bootstrap_samples": n_boot,
              "genres_averaged": metrics.genres_averaged(y_true, trained.genres),
              "metrics": summary, "calibration": {"method": trained.calibration.method,
                                                  **calibration.report(y_true, raw, scores)},
              "adaptation": adaptation and adaptation.to_json(), "true_mix": y_true.mean(axis=0).round(4).tolist(),
              "per_genre": per_genre.round(4).replace({np.nan: None}).to_dict("records")}
    return result, per_genre


def write_result(result: dict, trained) -> None:
    """eval_<set>.json and .md in the model folder; the model card again after the test split."""
    write_json(result, trained.folder / f"eval_{result['set']}.json")
    (trained.folder / f"eval_{result['set']}.md").write_text(markdown_report(result))
    if result["set"] == "test" and (trained.folder / CARD_FILE).exists():
        write_model_card(trained.folder)  # the card now gives the test figures


def format_ci(values) -> str:
    value, low, high = values
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def table(results: list[dict], columns=("macro_ap", "micro_ap", "top3_hit_rate", "macro_f1@tuned",
                                         "micro_f1@tuned")) -> pd.DataFrame:
    """Models and baselines as rows, 'value [low, high]' cells."""
    rows = {}
    for result in results:
        for name, figures in result["metrics"].items():
            if name not in rows:
                rows[name] = {c: format_ci(figures[c]) for c in columns}
    baselines = [r for r in rows if r.startswith("baseline")]
    ordered = [r for r in rows if r not in baselines] + baselines
    return pd.DataFrame(rows).T.loc[ordered]


def averaged_note(averaged: dict | None) -> str:
    """'Macro figures average the 17 genres present of 23 (absent: ...).'"""
    if not averaged:
        return "Macro figures average the genres present."
    absent = f" (no poster of {', '.join(averaged['absent'])})" if averaged["absent"] else ""
    return f"Macro figures (AP, F1) average the {averaged['count']} genres present of {averaged['of']}{absent}."


def markdown_report(result: dict) -> str:
    lines = [f"# {result['model']} on {result['set']}", "",
             f"{result['posters_evaluated']} posters; 95% bias-corrected bootstrap intervals over "
             f"{result['bootstrap_samples']} resamples.", ""]
    if result.get("calibration"):
        c = result["calibration"]
        lines += [f"Calibration ({c['method']}, fitted on validation): expected calibration error "
                  f"{c['ece_before']:.4f} before, {c['ece_after']:.4f} after; log-loss {c['log_loss_before']:.4f} "
                  f"before, {c['log_loss_after']:.4f} after.", ""]
    if result.get("adaptation"):
        lines += [f"Adapted to this collection's genre mix: {result['adaptation']['note']}.", ""]
    lines += [averaged_note(result.get("genres_averaged")), ""]
    mapping = result["mapping"]
    if mapping["unknown_genres"] or mapping["posters_without_known_genres"]:
        lines += [f"Left out: {mapping['posters_without_known_genres']} posters with none of the model's genres; "
                  f"genres the model does not know: {', '.join(mapping['unknown_genres']) or 'none'}.", ""]
    names = list(result["metrics"])
    lines += ["| metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for metric in result["metrics"][names[0]]:
        lines.append(f"| {metric} | " + " | ".join(format_ci(result["metrics"][n][metric]) for n in names) + " |")
    lines += ["", "## Per genre", "", "| genre | positives | AP | ROC-AUC | threshold |", "|---|---|---|---|---|"]
    for g in sorted(result["per_genre"], key=lambda g: -(g["ap"] or 0)):
        ap = f"{g['ap']:.3f}" if g["ap"] is not None else "n/a"
        auc = f"{g['roc_auc']:.3f}" if g["roc_auc"] is not None else "n/a"
        lines.append(f"| {g['genre']} | {g['positives']} | {ap} | {auc} | {g['threshold']:.2f} |")
    return "\n".join(lines) + "\n"


def of_this_data(paths: Paths, names: list[str]) -> list[str]:
    """The models trained on this project's splits (their manifests' data hash); the others are named and left out:
    a model of other data may have trained on these test posters, and never compares like with like."""
    from ..data.encode import SPLITS
    from ..modelfolder.provenance import data_hash
    from ..modelfolder.layout import read_manifest
    splits = [paths.split_csv(s) for s in SPLITS]
    if not all(p.exists() for p in splits):
        return names
    current = data_hash(splits)
    kept = [n for n in names if read_manifest(paths.models / n).get("data_hash") == current]
    others = [n for n in names if n not in kept]
    if others:
        print(f"left out, trained on other data than this project's splits: {', '.join(others)} "
              f"(name a model with --model to evaluate it anyway)")
    return kept


def compare_models(names: list[str] | None = None, data: str | Path | None = None, paths: Paths | None = None,
                   n_boot: int = 200, figures: bool = True, **adaptation) -> tuple[pd.DataFrame, list[dict]]:
    """Evaluate several model folders on the same posters; the comparison table and the results. Without names:
    every model trained on this project's splits."""
    paths = paths or Paths.default()
    names = names or of_this_data(paths, model_names(paths))
    if not names:
        raise UserError(f"{paths.models}: no trained model to evaluate (run `postergenre train` first)")
    results = [evaluate(name, data, paths, n_boot=n_boot, figures=figures, progress=False, **adaptation)
               for name in names]
    return table(results), results


def print_saved_comparison(paths: Paths, set_name: str = "test") -> pd.DataFrame | None:
    """The comparison table from the eval_<set>.json files the evaluation wrote."""
    files = sorted(paths.models.glob(f"*/eval_{set_name}.json")) if paths.models.exists() else []
    kept = set(of_this_data(paths, [f.parent.name for f in files]))
    files = [f for f in files if f.parent.name in kept]
    if not files:
        return None
    comparison = table([json.loads(f.read_text()) for f in files])
    print(f"\nComparison on the {set_name} split (95% bias-corrected bootstrap intervals in brackets):")
    print(comparison.to_string())
    return comparison
