# Two commands for a newcomer: `make run` and `make test`. `make install` is the idempotent set-up both use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Reinstall only when the project's dependencies change. The "compat" editable mode puts the checkout on
# sys.path with a plain .pth line: setuptools' default import hook costs every `glimpse` process 60 ms at start.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]' --config-settings editable_mode=compat
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/glimpse

test: install
	$(BIN)/ruff check engine desktop tests packaging benchmarks
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check engine desktop tests packaging benchmarks
	$(BIN)/ruff format --check engine desktop tests packaging benchmarks

format: install
	$(BIN)/ruff format engine desktop tests packaging benchmarks
	$(BIN)/ruff check --fix engine desktop tests packaging benchmarks

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache

.PHONY: package package-test
PACKAGE_STAMP := $(VENV)/.packaging
VERSION = $(shell $(BIN)/python -c 'import importlib.metadata as m; print(m.version("glimpse"))')

$(PACKAGE_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev,package]' --config-settings editable_mode=compat
	touch $(PACKAGE_STAMP)

# The one-folder bundle dist/glimpse/ and dist/glimpse_<version>_amd64.deb (packaging/README.md).
package: $(PACKAGE_STAMP)
	$(BIN)/pyinstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller packaging/glimpse.spec
	VERSION=$(VERSION) packaging/build_deb.sh
	@du -sh dist/glimpse dist/glimpse_$(VERSION)_amd64.deb

# Builds both, then runs the frozen program from an empty environment and checks the package's contents.
package-test: package
	GLIMPSE_PACKAGE=dist/glimpse_$(VERSION)_amd64.deb $(BIN)/python -m pytest -q tests/packaging

.PHONY: shapes-model shapes-eval
# Train the shipped shapes models (CPU, about 30 min, seeded): resources/models/shapes-{fast,slow,fast-plain}.pt
shapes-model: install
	benchmarks/train_shapes.sh

# Evaluate them on the synthetic test split: benchmarks/results/*.json and docs/evaluation-recall-vs-time.png
shapes-eval: install
	benchmarks/evaluate_shapes.sh
