"""Evaluation figures: AP against genre frequency, precision-recall, reliability, best and worst genres, a
gallery of right and wrong posters. Each returns its matplotlib Figure."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve

from ..data.figures import plt, save_figure  # pyplot, headless where nothing shows figures
from ..data.images import open_rgb
from ..scoring.calibration import expected_calibration_error, reliability_table


def ap_vs_frequency(per_genre: pd.DataFrame, folder: Path | None = None):
    """Each genre's AP against its share of these posters, which is what a random ranking's AP equals (the chance
    line). Log scale: the rare genres, where labels would pile up, spread out."""
    shown = per_genre.dropna(subset=["ap"])
    frequency = shown.prevalence if "prevalence" in shown else shown.train_share
    fig, ax = plt.subplots(figsize=(7, 4.8))
    ax.scatter(frequency, shown.ap, color="tab:blue", label="model AP")
    grid = np.geomspace(frequency.min(), 1, 50)
    ax.plot(grid, grid, "--", color="gray", label="chance (AP = frequency)")
    ax.set_xscale("log")
    ax.set(xlabel="genre frequency in these posters (log scale)", ylabel="average precision", ylim=(0, 1.05),
           title="Per-genre AP against frequency")
    for genre, x, y, dy in zip(shown.genre, frequency, shown.ap, label_offsets(ax, frequency, shown.ap)):
        ax.annotate(genre, (x, y), fontsize=8, xytext=(8, dy), textcoords="offset points", va="center",
                    arrowprops=dict(arrowstyle="-", lw=0.5, color="gray") if abs(dy) > 1 else None)
    ax.legend(loc="upper left")
    return save_figure(fig, folder, "ap_vs_frequency.png")


def label_offsets(ax, xs, ys, height: float = 10.0, width: float = 60.0) -> list[float]:
    """Vertical offsets (points) for labels beside points, so that no two labels within `width` points of each
    other sideways come closer than `height` points: each is pushed up past the one below it."""
    fig = ax.figure
    fig.canvas.draw()
    points = ax.transData.transform(np.column_stack([np.asarray(xs, float), np.asarray(ys, float)]))
    points = points * 72 / fig.dpi  # pixels to points
    order = np.argsort(points[:, 1])
    placed: list[tuple[float, float]] = []  # (x, label y) of the labels placed so far
    offsets = np.zeros(len(points))
    for i in order:
        x, y = points[i]
        label = y
        for other_x, other_y in sorted(placed, key=lambda p: p[1]):
            if abs(other_x - x) < width and abs(other_y - label) < height:
                label = other_y + height
        placed.append((x, label))
        offsets[i] = label - y
    return offsets.tolist()


def learning_curve_figure(curve: pd.DataFrame, folder: Path | None = None):
    """Validation macro AP against training posters (log scale): is the curve still rising at the right?"""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.plot(curve.train_posters, curve.macro_ap, "o-", color="tab:blue", label="head on frozen features")
    for row in curve.itertuples():
        ax.annotate(f"{row.macro_ap:.3f}", (row.train_posters, row.macro_ap), fontsize=8, xytext=(-10, 6),
                    textcoords="offset points")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="training posters (log scale)", ylabel="validation macro AP",
           title="Learning curve: does more data still help?")
    ax.legend(loc="lower right")
    return save_figure(fig, folder, "learning_curve.png")


def precision_recall_curves(y_true, scores, genres, folder: Path | None = None, n: int = 6):
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for j in np.argsort(-np.asarray(y_true).sum(axis=0))[:n]:
        precision, recall, _ = precision_recall_curve(y_true[:, j], scores[:, j])
        ax.plot(recall, precision, label=f"{genres[j]} (prevalence {y_true[:, j].mean():.2f})")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
           title=f"Precision-recall, the {n} most frequent genres")
    ax.legend(fontsize=8)
    return save_figure(fig, folder, "precision_recall.png")


def reliability_diagram(y_true, raw, calibrated=None, folder: Path | None = None, bins: int = 10):
    """Observed share of positives against predicted probability, before and after calibration."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfectly calibrated")
    curves = {"network output": (raw, "tab:red")}
    if calibrated is not None:
        curves["calibrated"] = (calibrated, "tab:blue")
    for label, (scores, colour) in curves.items():
        table = reliability_table(y_true, scores, bins)
        ece = expected_calibration_error(y_true, scores, bins)
        ax.plot(table.predicted, table.observed, "o-", color=colour, label=f"{label} (ECE {ece:.3f})")
    ax.set(xlabel="predicted probability", ylabel="observed frequency", xlim=(0, 1), ylim=(0, 1),
           title="Reliability (all genres pooled)")
    ax.legend(fontsize=8)
    return save_figure(fig, folder, "reliability.png")


def best_and_worst_genres(per_genre: pd.DataFrame, folder: Path | None = None):
    ordered = per_genre.dropna(subset=["ap"]).sort_values("ap")
    chance = ordered.prevalence if "prevalence" in ordered else ordered.train_share
    fig, ax = plt.subplots(figsize=(6.5, 0.3 * len(ordered) + 1))
    lift = ordered.ap - chance
    ax.barh(ordered.genre, ordered.ap, color=np.where(lift > 0.1, "tab:green", "tab:orange"))
    ax.scatter(chance, ordered.genre, color="black", marker="|", s=200, label="chance (frequency here)")
    ax.invert_yaxis()  # read top to bottom: the worst genre first
    ax.set(xlabel="average precision", title="Genres from worst to best")
    ax.legend(loc="lower right")
    return save_figure(fig, folder, "best_and_worst_genres.png")


def poster_gallery(frame: pd.DataFrame, y_true, scores, genres, folder: Path | None = None, per_kind: int = 4):
    """Right (top genre is true, most confident) and wrong (none of the top 3 is true) posters."""
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    top3 = np.argsort(-scores, axis=1)[:, :3]
    top1_true = y_true[np.arange(len(y_true)), top3[:, 0]] == 1
    none_true = np.take_along_axis(y_true, top3, axis=1).sum(axis=1) == 0
    confidence = scores.max(axis=1)
    right = np.where(top1_true)[0][np.argsort(-confidence[top1_true])][:per_kind]
    wrong = np.where(none_true)[0][np.argsort(-confidence[none_true])][:per_kind]
    fig, axes = plt.subplots(2, per_kind, figsize=(3 * per_kind, 8.5), squeeze=False)
    for row, (kind, picks) in enumerate((("right", right), ("wrong", wrong))):
        for col in range(per_kind):
            ax = axes[row, col]
            ax.axis("off")
            if col >= len(picks):
                continue
            i = picks[col]
            ax.imshow(open_rgb(frame.poster_path.iloc[i]))
            truth = ", ".join(g for g, t in zip(genres, y_true[i]) if t)
            guess = ", ".join(f"{genres[j]} {scores[i, j]:.2f}" for j in top3[i])
            title = textwrap.shorten(str(frame.title.iloc[i]), 30, placeholder="...")  # cut between words
            ax.set_title(f"{kind}: {title}\ntrue: {truth}\npred: {guess}", fontsize=8,
                         color="tab:green" if kind == "right" else "tab:red")
    fig.tight_layout()
    return save_figure(fig, folder, "gallery.png")


def evaluation_figures(frame, y_true, scores, trained, per_genre, folder: Path | None, raw=None) -> list:
    """raw: the network's uncalibrated output, drawn beside the calibrated `scores` in the reliability diagram."""
    return [ap_vs_frequency(per_genre, folder), precision_recall_curves(y_true, scores, trained.genres, folder),
            reliability_diagram(y_true, scores if raw is None else raw, None if raw is None else scores, folder),
            best_and_worst_genres(per_genre, folder),
            poster_gallery(frame, y_true, scores, trained.genres, folder)]


def ap_against_training_posters(comparison: dict, counts: pd.DataFrame, names: tuple[str, str],
                                path: Path | None = None):
    """Each genre's AP against its training posters (all sources, log scale), the earlier model's as a grey dot and
    the later one's as a blue one joined by an arrow; the rare genres named in bold."""
    old, new = names
    fig, ax = plt.subplots(figsize=(8, 5.2))
    for genre, (value, _, _) in comparison["per_genre_ap"][new].items():
        before = comparison["per_genre_ap"][old][genre][0]
        rare = genre in comparison["group"]
        x_new, x_old = counts.at[genre, "all"], counts.at[genre, "population"]
        ax.annotate("", (x_new, value), (x_old, before),
                    arrowprops={"arrowstyle": "->", "color": "tab:blue" if rare else "lightgray", "lw": 1})
        ax.scatter([x_old], [before], color="gray", s=18, zorder=3)
        ax.scatter([x_new], [value], color="tab:blue" if rare else "tab:cyan", s=24, zorder=3)
        ax.annotate(genre, (x_new, value), fontsize=8, xytext=(5, 0), textcoords="offset points", va="center",
                    fontweight="bold" if rare else "normal")
    ax.scatter([], [], color="gray", s=18, label=f"{old} (its training posters)")
    ax.scatter([], [], color="tab:blue", s=24, label=f"{new}, rare genres (training-only posters added)")
    ax.scatter([], [], color="tab:cyan", s=24, label=f"{new}, other genres")
    ax.set_xscale("log")
    ax.set(xlabel="training posters of the genre (log scale)", ylabel="average precision on the test posters",
           ylim=(0, 1.02), title=f"Per-genre AP against training posters ({comparison['posters']} test posters)")
    ax.legend(fontsize=8, loc="upper left")
    return save_figure(fig, path.parent if path else None, path.name if path else "")
