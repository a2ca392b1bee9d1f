"""Figures of the data stages (genre frequency, genres per poster, co-occurrence), and save_figure, which every
figure module uses: matplotlib's headless backend is chosen here, before pyplot loads."""
from __future__ import annotations

from pathlib import Path

import matplotlib

if matplotlib.get_backend().lower() not in ("module://matplotlib_inline.backend_inline", "inline"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def save_figure(fig, folder: Path | None, name: str, dpi: int = 110):
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
    return save_figure(fig, folder, "genre_frequency.png")


def genres_per_poster(table: pd.DataFrame, vocabulary: list[str], folder: Path | None = None):
    per_poster = table[vocabulary].sum(axis=1).value_counts().sort_index()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(per_poster.index.astype(str), per_poster.values, color="tab:green")
    ax.set(title=f"Genres per poster (mean {table[vocabulary].sum(axis=1).mean():.2f})",
           xlabel="number of genres", ylabel="posters")
    return save_figure(fig, folder, "genres_per_poster.png")


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
    return save_figure(fig, folder, "genre_cooccurrence.png")


def save_encode_figures(table: pd.DataFrame, vocabulary: list[str], folder: Path) -> list:
    return [genre_frequency(table, vocabulary, folder), genres_per_poster(table, vocabulary, folder),
            cooccurrence(table, vocabulary, folder)]
