# Two commands for a newcomer: `make run` and `make test`. Both create .venv when missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

# Also installs this repo in editable mode: the `winnow` command (= python -m scoring).
$(BIN)/.installed: requirements.txt requirements-dev.txt requirements-ray.txt \
		requirements-label-studio.txt requirements-faiss.txt pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q -e .
	touch $@

.PHONY: setup run score-digits test test-slow lint bench label-studio
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

# A real Label Studio server for the round-trip test (tests/test_label_studio_server.py, slow),
# in an environment of its own; label-studio 1.23.2 needs sentry-sdk < 3 to start.
LS_VENV := .venv-label-studio
label-studio: $(LS_VENV)/bin/label-studio
$(LS_VENV)/bin/label-studio:
	$(PY) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install -q label-studio==1.23.2 "sentry-sdk<3"
