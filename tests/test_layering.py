"""The package's layering, held by import-linter's contracts in pyproject.toml (`lint-imports`)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from postergenre.config import REPO_ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """lint-imports on the package under `root`, with the contracts of the pyproject.toml there."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_package_keeps_its_import_contracts():
    result = lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    declared = (REPO_ROOT / "pyproject.toml").read_text().count("[[tool.importlinter.contracts]]")
    assert declared >= 5 and f"Contracts: {declared} kept, 0 broken." in result.stdout


@pytest.mark.parametrize("module,line,broken", [
    ("inference/litert.py", "from . import predictor  # a circle: predictor imports litert",
     "No import circles between the modules of any sub-package BROKEN"),
    ("data/io.py", "from ..training import train  # the data layer reaching up to training",
     "The pipeline's layers: a sub-package imports only those below it BROKEN"),
    ("inference/batches.py", "import tensorflow  # on the LiteRT path",
     "Prediction on LiteRT never imports TensorFlow BROKEN"),
    ("app/serve.py", "from ..studies import shift  # research on the page's path",
     "never import the studies BROKEN"),
    ("modelfolder/card.py", "import keras  # the card needs no network",
     "functions that need it BROKEN"),
    ("modelfolder/layout.py", "from ..inference import predictor  # the folder's room reaching up to what runs it",
     "The pipeline's layers: a sub-package imports only those below it BROKEN"),
])
def test_a_contract_fails_when_someone_breaks_it(tmp_path, module, line, broken):
    shutil.copytree(REPO_ROOT / "postergenre", tmp_path / "postergenre",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / "postergenre" / module, "a") as f:
        f.write(f"\n{line}\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0 and broken in result.stdout, result.stdout[-3000:] + result.stderr[-2000:]
