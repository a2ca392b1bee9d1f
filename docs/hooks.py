"""MkDocs hook: the Architecture page is drawn from the import graph and the contracts; the executed notebooks of the
last `make all` (reports/NN_*.ipynb) become pages beside their stages, rendered as saved (mkdocs-jupyter never
executes them). Without reports/ the site simply has none."""
from __future__ import annotations

import shutil
from pathlib import Path

NOTEBOOK_PAGES = Path("pipeline") / "notebooks"


ARCHITECTURE = "architecture.md"  # written at every build from the code (ignored by git)


def architecture_page(root: Path) -> str:
    """The package's rooms (its sub-packages), in the layers contract's order: the modules and lines of each, the rooms
    its code imports today (grimp, the graph import-linter checks) and those the contracts allow; then every
    contract by name."""
    import grimp
    import tomllib

    settings = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["importlinter"]
    package = settings["root_package"]
    contracts = settings["contracts"]
    layers = next(c["layers"] for c in contracts if c["type"] == "layers")
    levels = [[room.strip() for room in layer.split("|")] for layer in layers]
    forbidden = [c for c in contracts if c["type"] == "forbidden"]
    graph = grimp.build_graph(package)

    def short(names) -> str:
        return ", ".join(f"`{n.removeprefix(package + '.')}`" for n in names) or "nothing"

    rows = ["| room | modules | lines | imports, in the code today | may import (the layers below it) | never imports |",
            "|---|---|---|---|---|---|"]
    for depth, level in enumerate(levels):
        below = [room for lower in levels[depth + 1:] for room in lower]
        for room in level:
            modules = sorted(graph.find_descendants(room)) if graph.find_children(room) else [room]
            files = [root / (m.replace(".", "/") + ".py") for m in modules] + [root / room.replace(".", "/") /
                                                                              "__init__.py"]
            lines = sum(len(f.read_text().splitlines()) for f in set(files) if f.is_file())
            imported = [other for other in (r for lvl in levels for r in lvl)
                        if other != room and graph.direct_import_exists(importer=room, imported=other,
                                                                        as_packages=True)]
            never = [m for c in forbidden if any(room == s or room.startswith(s + ".") for s in c["source_modules"])
                     for m in c["forbidden_modules"]]
            rows.append(f"| `{room.removeprefix(package + '.')}` | {len(modules)} | {lines:,} | {short(imported)} | "
                        f"{short(below)} | {short(sorted(set(never)))} |")
    return "\n".join([
        "# Architecture", "",
        f"Drawn from the code when this site is built (`docs/hooks.py`): the rooms of `{package}` top to bottom in "
        "the order of the layers contract in `pyproject.toml`, the rooms each one's modules import today (the import "
        "graph that import-linter checks, read with grimp), and what the contracts allow. `lint-imports` fails "
        "`make test` when code breaks one; `tests/test_layering.py` shows each failing when broken.", "",
        *rows, "",
        "The contracts, by name:", "",
        *[f"- {c['name']} ({c['type'].replace('_', ' ')})" + (
            f": {short(c['source_modules'])} never import {short(c['forbidden_modules'])}"
            + (f" (allowed: {short(c['ignore_imports'])})" if c.get("ignore_imports") else "")
            if c["type"] == "forbidden" else "") for c in contracts], ""])


def on_config(config):
    docs = Path(config["docs_dir"])
    (docs / ARCHITECTURE).write_text(architecture_page(docs.parent))
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
