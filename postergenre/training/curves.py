"""Training curves, and the seeds' network's diagnosis per epoch (notebook 04)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..data.figures import plt, save_figure  # pyplot, headless where nothing shows figures


PHASES = {"history": "training", "history_finetune": "fine-tuning the top layers"}  # history file stem -> title


def training_curves(histories: dict[str, pd.DataFrame], path: Path | None = None, show: bool = True):
    """Loss and PR-AUC (macro AP estimate) per epoch, train against validation, one row per phase (keyed by the
    history file's stem). show=False: saved and closed, never displayed (training draws it; the notebook shows it)."""
    from matplotlib.ticker import MaxNLocator
    histories = {k: v for k, v in histories.items() if len(v)}
    fig, axes = plt.subplots(max(1, len(histories)), 2, figsize=(10, 3.2 * max(1, len(histories))), squeeze=False)
    for row, (phase, history) in zip(axes, histories.items()):
        epochs = history["epoch"] + 1
        for ax, metric, label in ((row[0], "loss", "loss"), (row[1], "pr_auc", "PR-AUC (mAP estimate)")):
            if metric in history:
                ax.plot(epochs, history[metric], "o-", label="train")
            if f"val_{metric}" in history:
                ax.plot(epochs, history[f"val_{metric}"], "o-", label="validation")
            ax.set(title=f"{PHASES.get(phase, phase)}: {label}", xlabel="epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
            ax.legend()
    fig.tight_layout()
    save_figure(fig, path and path.parent, path and path.name, dpi=100)
    if not show:
        plt.close(fig)
    return fig


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
    return save_figure(fig, path and path.parent, path and path.name, dpi=100)
