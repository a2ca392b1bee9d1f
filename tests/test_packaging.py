"""Installing it like any Python package (issue 43, in part): one place for versions, a licence, the base install
enough to predict, and a missing extra named."""
import importlib.metadata as metadata
import json
import subprocess
import sys
import tomllib

import pytest

from postergenre.cli import EXTRAS, main
from postergenre.config import REPO_ROOT
from tests.conftest import real_posters

PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def test_requirements_txt_is_derived_from_pyproject():
    pins = PROJECT["dependencies"] + [p for name, pins in PROJECT["optional-dependencies"].items() if name != "all"
                                      for p in pins]
    listed = [line for line in (REPO_ROOT / "requirements.txt").read_text().splitlines() if not line.startswith("#")]
    assert listed == list(dict.fromkeys(pins)), "run `make lock` after editing pyproject.toml"
    locked = (REPO_ROOT / "requirements.lock").read_text()
    for pin in listed:
        assert f"\n{pin.lower()} \\" in locked.lower(), f"{pin} is not in requirements.lock: run `make lock`"


def test_a_licence_and_the_metadata_a_package_index_shows():
    assert PROJECT["license"] == "Apache-2.0" and "Apache License" in (REPO_ROOT / "LICENSE").read_text()
    assert PROJECT["readme"] == "README.md" and PROJECT["authors"] and PROJECT["classifiers"]
    assert "license: apache-2.0" in (REPO_ROOT / "models" / "default" / "README.md").read_text()


# imported by a base package when installed (Pillow's defusedxml, pandas' pytz), never required by it
IMPORTED_WHEN_PRESENT = {"defusedxml", "pytz"}


def _requirement_closure(requirements: list[str]) -> set[str]:
    """The distributions that `requirements` install, with everything they pull in (this environment's view)."""
    seen, todo = set(), [r.split("==")[0] for r in requirements]
    while todo:
        name = metadata.distribution(todo.pop()).metadata["Name"].lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        for requirement in metadata.requires(name) or []:
            if "extra ==" in requirement:
                continue
            if ";" in requirement:  # an environment marker: only where it holds here
                from packaging.requirements import Requirement
                if not Requirement(requirement).marker.evaluate():
                    continue
            wanted = requirement.split(";")[0].split("[")[0]
            for stop in "<>=!~ (":
                wanted = wanted.split(stop)[0]
            try:
                metadata.distribution(wanted.strip())
            except metadata.PackageNotFoundError:
                continue
            todo.append(wanted.strip())
    return seen


@pytest.mark.shared
def test_what_predicting_imports_is_all_in_the_base_install(tmp_path):
    folder = tmp_path / "posters"
    folder.mkdir()
    for poster in real_posters(25):
        (folder / poster.name).write_bytes(poster.read_bytes())
    probe = ("import sys, json, importlib.metadata as md; from postergenre.cli import main; "
             "code = main(['predict', sys.argv[1], '--output', sys.argv[2]]); "
             "main(['predict', sys.argv[3]]); dists = md.packages_distributions(); "
             "print(json.dumps(sorted({d for m in list(sys.modules) for d in dists.get(m.split('.')[0], [])})))")
    done = subprocess.run([sys.executable, "-c", probe, str(folder), str(tmp_path / "out.csv"),
                           str(real_posters(1)[0])], capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    used = {d.lower().replace("_", "-") for d in json.loads(done.stdout.strip().splitlines()[-1])}
    base = _requirement_closure(PROJECT["dependencies"]) | {"postergenre", "setuptools"} | IMPORTED_WHEN_PRESENT
    assert used <= base, f"predicting imports {sorted(used - base)}, which the base install leaves out"
    assert "tensorflow-cpu" not in used and "keras" not in used


def test_a_stage_whose_extra_is_missing_names_it(capsys, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def without_tensorflow(name, *args, **kwargs):
        if name.split(".")[0] in ("tensorflow", "keras"):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_tensorflow)
    for module in [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")
                   or m.startswith("postergenre.training")]:
        monkeypatch.delitem(sys.modules, module)
    assert main(["train", "--model", "custom_cnn", "--limit", "10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'postergenre[train]'" in err and "Traceback" not in err, err
    assert set(EXTRAS.values()) <= set(PROJECT["optional-dependencies"])
