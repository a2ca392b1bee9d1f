"""One poster's prediction drawn: every genre against its threshold, and the poster with its Grad-CAM overlays."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..data.figures import plt, save_figure  # pyplot, headless where nothing shows figures


def genre_bars(row: dict, trained, ax=None):
    """Every genre's probability as a bar (green: above its tuned threshold), the threshold as a tick."""
    fig = None
    if ax is None:  # a figure outside pyplot's registry: a server draws one per request and never closes them
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
    return save_figure(fig, path and path.parent, path and path.name, dpi=100)
