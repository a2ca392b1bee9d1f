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
    constraints = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["postergenre"]["lock-constraints"]
    pins = PROJECT["dependencies"] + [p for name, pins in PROJECT["optional-dependencies"].items() if name != "all"
                                      for p in pins] + constraints
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


@pytest.mark.slow
@pytest.mark.shared
def test_the_wheel_installed_alone_predicts_offline_the_same_as_the_checkout(tmp_path):
    """The wheel of this checkout and its base dependencies (pinned by the lock, from the package cache: offline)
    in a fresh venv outside the repository: a poster with and without its words and a folder, the wheel's own
    default model found, the same probabilities as the checkout's venv, no TensorFlow; a training stage names its
    extra."""
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    from bench_install import base_install, largest_difference, predict
    venv, _ = base_install(tmp_path)
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert not (site / "tensorflow").exists() and (site / "postergenre" / "_models" / "default" / "model.tflite").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    posters = real_posters(4)
    for options in ((), ("--no-text",)):
        base = predict(venv, posters, elsewhere, *options)
        full = predict(REPO_ROOT / ".venv", posters, REPO_ROOT, *options)
        assert largest_difference(base, full) < 5e-5 and all(len(r["labels"]) == 3 for r in base)
    folder = elsewhere / "posters"
    folder.mkdir()
    for poster in posters:
        (folder / poster.name).write_bytes(poster.read_bytes())
    done = subprocess.run([str(venv / "bin" / "postergenre"), "predict", str(folder), "--output", "out.csv"],
                          cwd=elsewhere, capture_output=True, text=True)
    assert done.returncode == 0 and len((elsewhere / "out.csv").read_text().splitlines()) == 5, done.stderr
    assert not (site / "data").exists() and not (site / "models").exists(), "nothing written into site-packages"
    train = subprocess.run([str(venv / "bin" / "postergenre"), "train"], cwd=elsewhere, capture_output=True, text=True)
    assert train.returncode == 2 and "pip install 'postergenre[train]'" in train.stderr
    version = subprocess.run([str(venv / "bin" / "postergenre"), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and "postergenre" in version.stdout


def test_every_locked_package_accepts_this_python_as_pip_requires():
    """pip refuses a package whose Requires-Python excludes the running Python, where uv installs it anyway: every
    package of the lock, as installed here from it, must accept this Python, so that pip installs the lock too."""
    from packaging.specifiers import SpecifierSet
    locked = {line.split("==")[0].lower().replace("_", "-").replace(".", "-"): line.split("==")[1].split(" ")[0]
              for line in (REPO_ROOT / "requirements.lock").read_text().splitlines() if line[:1].isalnum()}
    python = ".".join(map(str, sys.version_info[:3]))
    refused = []
    for dist in metadata.distributions():
        name = dist.metadata["Name"].lower().replace("_", "-").replace(".", "-")
        if locked.get(name) == dist.version and python not in SpecifierSet(dist.metadata.get("Requires-Python") or ""):
            refused.append(f"{name}=={dist.version} (Python {dist.metadata['Requires-Python']})")
    assert not refused, f"pip would refuse {refused}: pin another version in [tool.postergenre] lock-constraints"
