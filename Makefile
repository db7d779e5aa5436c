# Two commands for a newcomer: `make run` and `make test`. `make install` is the idempotent set-up both use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Reinstall only when the project's dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/glimpse

test: install
	$(BIN)/ruff check engine desktop tests
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check engine desktop tests
	$(BIN)/ruff format --check engine desktop tests

format: install
	$(BIN)/ruff format engine desktop tests
	$(BIN)/ruff check --fix engine desktop tests

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache

.PHONY: shapes-model shapes-eval
# Train the shipped shapes models (CPU, about 30 min, seeded): resources/models/shapes-{fast,slow,fast-plain}.pt
shapes-model: install
	benchmarks/train_shapes.sh

# Evaluate them on the synthetic test split: benchmarks/results/*.json and docs/evaluation-recall-vs-time.png
shapes-eval: install
	benchmarks/evaluate_shapes.sh
