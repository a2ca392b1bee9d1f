"""Figures a person would rather look at than read. Each returns its matplotlib Figure."""
from __future__ import annotations

from pathlib import Path

import matplotlib

if matplotlib.get_backend().lower() not in ("module://matplotlib_inline.backend_inline", "inline"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def _finish(fig, folder: Path | None, name: str, dpi: int = 110):
    """Save the figure (when a folder is given); close it when nothing displays it (headless Agg)."""
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        fig.savefig(folder / name, dpi=dpi, bbox_inches="tight")
    if matplotlib.get_backend().lower() == "agg":
        plt.close(fig)
    return fig


def genre_frequency(table: pd.DataFrame, vocabulary: list[str], folder: Path | None = None):
    counts = table[vocabulary].sum().sort_values()
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(counts) + 1))
    ax.barh(counts.index, counts.values, color="tab:blue")
    ax.set(title=f"Posters per genre (n={len(table)})", xlabel="posters")
    for y, v in enumerate(counts.values):
        ax.text(v, y, f" {v / len(table):.1%}", va="center", fontsize=8)
    return _finish(fig, folder, "genre_frequency.png")


def genres_per_poster(table: pd.DataFrame, vocabulary: list[str], folder: Path | None = None):
    per_poster = table[vocabulary].sum(axis=1).value_counts().sort_index()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(per_poster.index.astype(str), per_poster.values, color="tab:green")
    ax.set(title=f"Genres per poster (mean {table[vocabulary].sum(axis=1).mean():.2f})",
           xlabel="number of genres", ylabel="posters")
    return _finish(fig, folder, "genres_per_poster.png")


def cooccurrence(table: pd.DataFrame, vocabulary: list[str], folder: Path | None = None):
    labels = table[vocabulary].to_numpy(dtype=np.int64)
    matrix = labels.T @ labels
    share = matrix / np.maximum(np.diag(matrix)[:, None], 1)  # row: P(column genre | row genre)
    fig, ax = plt.subplots(figsize=(8, 7))
    image = ax.imshow(share, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(vocabulary)), vocabulary, rotation=90)
    ax.set_yticks(range(len(vocabulary)), vocabulary)
    ax.set_title("Genre co-occurrence: P(column | row)")
    fig.colorbar(image, ax=ax, shrink=0.8)
    return _finish(fig, folder, "genre_cooccurrence.png")


def save_encode_figures(table: pd.DataFrame, vocabulary: list[str], folder: Path) -> list:
    return [genre_frequency(table, vocabulary, folder), genres_per_poster(table, vocabulary, folder),
            cooccurrence(table, vocabulary, folder)]


def training_curves(histories: dict[str, pd.DataFrame], path: Path | None = None):
    """Loss and PR-AUC (macro AP estimate) per epoch, train against validation, one row per phase."""
    histories = {k: v for k, v in histories.items() if len(v)}
    fig, axes = plt.subplots(max(1, len(histories)), 2, figsize=(10, 3.2 * max(1, len(histories))), squeeze=False)
    for row, (phase, history) in zip(axes, histories.items()):
        epochs = history["epoch"] + 1
        for ax, metric, label in ((row[0], "loss", "loss"), (row[1], "pr_auc", "PR-AUC (mAP estimate)")):
            if metric in history:
                ax.plot(epochs, history[metric], "o-", label="train")
            if f"val_{metric}" in history:
                ax.plot(epochs, history[f"val_{metric}"], "o-", label="validation")
            ax.set(title=f"{phase}: {label}", xlabel="epoch")
            ax.legend()
    fig.tight_layout()
    return _finish(fig, path and path.parent, path and path.name, dpi=100)


def diagnosis_curves(variants: dict[str, list[dict]], path: Path | None = None):
    """benchmarks/bench_seed_cnn.py's measurements per epoch, one line per variant of the seeds' network."""
    panels = [("val_roc_auc", "validation ROC-AUC (0.5: the prior)"), ("output_spread", "output spread (0: the prior)"),
              ("dead_dense128", "dead units in Dense 128"), ("dead_dense64", "dead units in Dense 64")]
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 3.4))
    for name, rows in variants.items():
        table = pd.DataFrame(rows)
        for ax, (column, title) in zip(axes, panels):
            ax.plot(table.epoch, table[column], "o-", label=name)
            ax.set(title=title, xlabel="epoch (0: before training)")
    axes[0].axhline(0.5, color="gray", ls="--", lw=1)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return _finish(fig, path and path.parent, path and path.name, dpi=100)


def ap_vs_frequency(per_genre: pd.DataFrame, folder: Path | None = None):
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.scatter(per_genre.train_share, per_genre.ap, color="tab:blue", label="model AP")
    ax.plot([0, per_genre.train_share.max()], [0, per_genre.train_share.max()], "--", color="gray",
            label="chance (AP = frequency)")
    for row in per_genre.itertuples():
        ax.annotate(row.genre, (row.train_share, row.ap), fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.set(xlabel="genre frequency in training", ylabel="average precision", title="Per-genre AP against frequency")
    ax.legend()
    return _finish(fig, folder, "ap_vs_frequency.png")


def precision_recall_curves(y_true, scores, genres, folder: Path | None = None, n: int = 6):
    from sklearn.metrics import precision_recall_curve
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for j in np.argsort(-np.asarray(y_true).sum(axis=0))[:n]:
        precision, recall, _ = precision_recall_curve(y_true[:, j], scores[:, j])
        ax.plot(recall, precision, label=f"{genres[j]} (prevalence {y_true[:, j].mean():.2f})")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
           title=f"Precision-recall, the {n} most frequent genres")
    ax.legend(fontsize=8)
    return _finish(fig, folder, "precision_recall.png")


def reliability_diagram(y_true, raw, calibrated=None, folder: Path | None = None, bins: int = 10):
    """Observed share of positives against predicted probability, before and after calibration."""
    from .calibration import expected_calibration_error, reliability_table
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
    return _finish(fig, folder, "reliability.png")


def best_and_worst_genres(per_genre: pd.DataFrame, folder: Path | None = None):
    ordered = per_genre.dropna(subset=["ap"]).sort_values("ap")
    fig, ax = plt.subplots(figsize=(6.5, 0.3 * len(ordered) + 1))
    lift = ordered.ap - ordered.train_share
    ax.barh(ordered.genre, ordered.ap, color=np.where(lift > 0.1, "tab:green", "tab:orange"))
    ax.scatter(ordered.train_share, ordered.genre, color="black", marker="|", s=200, label="chance (frequency)")
    ax.set(xlabel="average precision", title="Genres from worst to best")
    ax.legend(loc="lower right")
    return _finish(fig, folder, "best_and_worst_genres.png")


def poster_gallery(frame: pd.DataFrame, y_true, scores, genres, folder: Path | None = None, per_kind: int = 4):
    """Right (top genre is true, most confident) and wrong (none of the top 3 is true) posters."""
    from .images import open_rgb
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
            ax.set_title(f"{kind}: {str(frame.title.iloc[i])[:28]}\ntrue: {truth}\npred: {guess}", fontsize=8,
                         color="tab:green" if kind == "right" else "tab:red")
    fig.tight_layout()
    return _finish(fig, folder, "gallery.png")


def evaluation_figures(frame, y_true, scores, trained, per_genre, folder: Path | None, raw=None) -> list:
    """raw: the network's uncalibrated output, drawn beside the calibrated `scores` in the reliability diagram."""
    return [ap_vs_frequency(per_genre, folder), precision_recall_curves(y_true, scores, trained.genres, folder),
            reliability_diagram(y_true, scores if raw is None else raw, None if raw is None else scores, folder),
            best_and_worst_genres(per_genre, folder),
            poster_gallery(frame, y_true, scores, trained.genres, folder)]


def genre_bars(row: dict, trained, ax=None):
    """Every genre's probability as a bar (green: above its tuned threshold), the threshold as a tick."""
    fig = None
    if ax is None:  # a figure outside pyplot's registry: a server draws one per request and never closes them
        from matplotlib.figure import Figure
        fig = Figure(figsize=(5.5, 4.8))
        ax = fig.subplots()
    probabilities = np.array([row[f"p_{g}"] for g in trained.genres])
    order = np.argsort(probabilities)
    above = set(row["above_threshold"])
    ax.barh(np.array(trained.genres)[order], probabilities[order],
            color=["tab:green" if trained.genres[j] in above else "tab:gray" for j in order])
    ax.scatter(np.asarray(trained.thresholds)[order], range(len(order)), marker="|", color="black", s=120,
               label="tuned threshold")
    ax.set(xlim=(0, 1), xlabel="probability", title="All genres")
    ax.tick_params(axis="y", labelsize=8)
    ax.legend(fontsize=7, loc="lower right")
    if fig is not None:
        fig.tight_layout()
    return fig


def prediction_figure(image: np.ndarray, row: dict, trained, heatmaps: dict, path: Path | None = None):
    """The poster, every genre's probability against its threshold, and a Grad-CAM overlay per top genre."""
    n = len(heatmaps)
    fig, axes = plt.subplots(1, 2 + n, figsize=(3.2 * (2 + n), 4.8),
                             gridspec_kw={"width_ratios": [1, 1.6] + [1] * n})
    axes[0].imshow(image.astype(np.uint8))
    axes[0].set_title(str(row.get("title", ""))[:30], fontsize=9)
    axes[0].axis("off")
    genre_bars(row, trained, axes[1])
    for ax, (genre, heatmap) in zip(axes[2:], heatmaps.items()):
        ax.imshow(image.astype(np.uint8))
        ax.imshow(heatmap, cmap="jet", alpha=0.45)
        ax.set_title(f"Grad-CAM: {genre} ({row[f'p_{genre}']:.2f})", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return _finish(fig, path and path.parent, path and path.name, dpi=100)
