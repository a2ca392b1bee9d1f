# postergenre: one target per stage; `make all SOURCE=...` runs the notebooks headless end to end.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SOURCE ?= ../shared/data/kaggle_posters_8k
TEXT   ?=
PG     := $(BIN)/postergenre

.PHONY: all default lock report docs venv chromium screenshots serve get-data clean-data encode train-custom train-pretrained evaluate test test-fast bench \
        clean-artefacts

all: venv
	$(PG) pipeline --source $(SOURCE) $(if $(TEXT),--text)
	$(PG) report

# the shipped default rebuilt from its recipe on the shared Kaggle sources and shipped as models/default (resumable:
# run it again after a kill)
default: venv
	$(PG) rebuild recipes/default.toml --ship

# pyproject.toml holds every version: requirements.txt lists its pins (the base and every extra), and
# requirements.lock those and every package they pull in, each with its hashes (run after editing pyproject.toml)
lock: venv
	$(BIN)/python -c "$$REQUIREMENTS" > requirements.txt
	$(BIN)/uv pip compile -q requirements.txt --generate-hashes --python-version 3.11 \
	    --python-platform x86_64-unknown-linux-gnu -o requirements.lock

define REQUIREMENTS
import tomllib
pyproject = tomllib.load(open("pyproject.toml", "rb"))
project, constraints = pyproject["project"], pyproject["tool"]["postergenre"]["lock-constraints"]
extras = [pin for name, pins in project["optional-dependencies"].items() if name != "all" for pin in pins]
print("# Generated from pyproject.toml by `make lock`: edit the versions there. The base install, every extra and")
print("# the lock's constraints: pip install --require-hashes -r requirements.lock (or uv) installs the whole lock.")
print("\n".join(dict.fromkeys(project["dependencies"] + extras + constraints)))
endef
export REQUIREMENTS

report: venv
	$(PG) report

# the documentation site into site/ (strict: a broken link or a page left out of the navigation stops it); the
# executed notebooks of the last `make all` (reports/) become pages as saved, never executed again
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install -q --compile-bytecode --require-hashes --python $(BIN)/python -r requirements.lock  # every package, its version and hash locked; uv: parallel downloads, 10x faster than pip; bytecode compiled now, or every `predict` compiles pandas again (1.5 s)
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

get-data: venv
	$(PG) get-data --source $(SOURCE)

clean-data: venv
	$(PG) clean

encode: venv
	$(PG) encode

train-custom: venv
	$(PG) train --model custom_cnn

train-pretrained: venv
	$(PG) train --model efficientnet_lite0

evaluate: venv
	$(PG) evaluate

serve: venv
	$(PG) serve

# two pytest workers, one a core; the tests that start processes of their own share one (xdist_group "processes");
# tests/test_docs.py builds the docs with --strict and opens them in Chromium
test: venv chromium
	$(BIN)/ruff check postergenre tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

# the docs' pictures of the page and the site, refreshed on purpose from the last `make test` (the browser tests
# write them to the ignored reports/screenshots/, so that a test run leaves the tree as it was)
screenshots:
	cp reports/screenshots/serve_page.jpg reports/screenshots/site_home.jpg reports/screenshots/site_results.jpg docs/images/

# the browser test drives Debian's Chromium (Playwright's own browser download needs the internet)
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# the unit run: no test that trains a network, drives a browser or starts workers (under 2 minutes)
test-fast: venv
	$(BIN)/ruff check postergenre tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup -m "not slow and not trains and not browser and not workers"

bench: venv
	$(BIN)/python benchmarks/bench_download.py
	$(BIN)/python benchmarks/bench_data.py
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_backbones.py
	$(BIN)/python benchmarks/bench_shift.py
	$(BIN)/python benchmarks/bench_custom_cnn.py
	$(BIN)/python benchmarks/bench_seed_cnn.py
	$(BIN)/python benchmarks/bench_predict.py
	$(BIN)/python benchmarks/bench_serve.py
	$(BIN)/python benchmarks/bench_serve.py --gradcam
	$(BIN)/python benchmarks/bench_pipeline.py
	$(BIN)/python benchmarks/bench_scale.py
	$(BIN)/python benchmarks/bench_source_shortcut.py
	$(BIN)/python benchmarks/bench_litert_training.py
	$(BIN)/python benchmarks/bench_ocr.py
	$(BIN)/python benchmarks/bench_text.py --root . --model default
	$(BIN)/python benchmarks/bench_rebuild.py
	$(BIN)/python benchmarks/bench_rebuild_resume.py

clean-artefacts:
	rm -rf data/raw/*.csv data/interim/*.csv data/processed/* data/cache/* reports/*.ipynb reports/figures
