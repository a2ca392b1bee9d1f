"""MkDocs hook: the executed notebooks of the last `make all` (reports/NN_*.ipynb) become pages beside their
stages, rendered as saved (mkdocs-jupyter never executes them). Without reports/ the site simply has none."""
from __future__ import annotations

import shutil
from pathlib import Path

NOTEBOOK_PAGES = Path("pipeline") / "notebooks"


def on_config(config):
    docs = Path(config["docs_dir"])
    reports = docs.parent / "reports"
    target = docs / NOTEBOOK_PAGES
    target.mkdir(parents=True, exist_ok=True)
    executed = sorted(reports.glob("[0-9][0-9]_*.ipynb")) if reports.is_dir() else []
    for stale in target.glob("*.ipynb"):
        if stale.name not in {n.name for n in executed}:
            stale.unlink()
    for notebook in executed:
        copy = target / notebook.name
        if not copy.exists() or copy.stat().st_mtime < notebook.stat().st_mtime:
            shutil.copy2(notebook, copy)
    if executed:
        pages = [{notebook.stem.replace("_", " "): (NOTEBOOK_PAGES / notebook.name).as_posix()}
                 for notebook in executed]
        for section in config["nav"]:
            if isinstance(section, dict) and "The pipeline" in section:
                section["The pipeline"] = [entry for entry in section["The pipeline"]
                                           if "Executed notebooks" not in entry] + [{"Executed notebooks": pages}]
    return config
