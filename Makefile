# postergenre: one target per stage; `make all SOURCE=...` runs the notebooks headless end to end.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SOURCE ?= ../shared/data/kaggle_posters_8k
PG     := $(BIN)/postergenre

.PHONY: all venv get-data clean-data encode pipeline test test-fast bench clean-artefacts

all: venv
	$(PG) pipeline --source $(SOURCE)

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

get-data: venv
	$(PG) get-data --source $(SOURCE)

clean-data: venv
	$(PG) clean

encode: venv
	$(PG) encode

test: venv
	$(BIN)/python -m pytest -q

test-fast: venv
	$(BIN)/python -m pytest -q -m "not slow"

bench: venv
	$(BIN)/python benchmarks/bench_download.py
	$(BIN)/python benchmarks/bench_data.py

clean-artefacts:
	rm -rf data/raw/*.csv data/interim/*.csv data/processed/* data/cache/* reports/*.ipynb reports/figures
