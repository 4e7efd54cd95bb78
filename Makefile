# Two commands for a newcomer: `make run` and `make test`. Both create .venv when missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/.installed: requirements.txt requirements-dev.txt requirements-ray.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

.PHONY: setup run score-digits test test-slow lint bench
setup: $(BIN)/.installed

# The app on http://127.0.0.1:8501; with an empty cache, Home offers a one-click digits run.
run: setup
	$(BIN)/python -m streamlit run app.py

# The engine alone: score the embedded digits with every score and list the cache.
score-digits: setup
	$(BIN)/python -m scoring score --dataset digits
	$(BIN)/python -m scoring list

test: setup
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

lint: setup
	$(BIN)/ruff check scoring tests bench
	$(BIN)/ruff format --check scoring tests bench

bench: setup
	$(BIN)/python bench/recording_overhead.py
