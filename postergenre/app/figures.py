"""One poster's prediction drawn: every genre against its threshold, and the poster with its Grad-CAM overlays."""
from __future__ import annotations

import html
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


def genre_bars_html(row: dict, trained) -> str:
    """genre_bars for a web page: the same bars and threshold ticks as HTML, drawn by the browser (a matplotlib
    figure costs the server about 0.25 s a request to draw and encode)."""
    probabilities = np.array([row[f"p_{g}"] for g in trained.genres])
    above = set(row["above_threshold"])
    lines = []
    for j in np.argsort(-probabilities):
        genre, p, t = trained.genres[j], probabilities[j], trained.thresholds[j]
        colour = "#2ca02c" if genre in above else "#9a9a9a"
        lines.append(
            f'<div class="genre-bar" style="display:flex;align-items:center;gap:8px;height:20px">'
            f'<span style="width:90px;text-align:right;font-size:13px">{html.escape(genre)}</span>'
            f'<span style="position:relative;flex:1;height:14px;background:#eee">'
            f'<span style="position:absolute;left:0;top:0;bottom:0;width:{100 * p:.1f}%;background:{colour}"></span>'
            f'<span title="tuned threshold {t:.2f}" style="position:absolute;left:{100 * t:.1f}%;top:-3px;bottom:-3px;'
            f'width:2px;background:#000"></span></span>'
            f'<span style="width:40px;font-size:12px">{p:.2f}</span></div>')
    legend = ('<div style="font-size:12px;color:#555;margin-top:6px">green: above the genre\'s tuned threshold '
              '(the black tick); grey: below it</div>')
    return f'<div class="genre-bars">{"".join(lines)}{legend}</div>'


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
