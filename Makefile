# Two commands for a newcomer: `make run` and `make test`. Both create .venv when missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

# Also installs this repo in editable mode: the `winnow` command (= python -m scoring).
$(BIN)/.installed: requirements.txt requirements-dev.txt requirements-ray.txt pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q -e .
	touch $@

.PHONY: setup run score-digits test test-slow lint bench
setup: $(BIN)/.installed

# The app on http://127.0.0.1:8501; with an empty cache, Home offers a one-click digits run.
run: setup
	$(BIN)/python -m streamlit run serve.py

# The engine alone: score the embedded digits with every score and list the cache.
score-digits: setup
	$(BIN)/winnow score --dataset digits
	$(BIN)/winnow list

test: setup
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

lint: setup
	$(BIN)/ruff check scoring tests bench
	$(BIN)/ruff format --check scoring tests bench

bench: setup
	$(BIN)/python bench/recording_overhead.py
