# mlkube developer commands. `make test` and `make demo` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: test demo unit integration static crds lint format clean

# Create or reuse the virtual environment; reinstall when the project's dependencies change.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

test: $(STAMP)  ## the whole suite
	$(BIN)/pytest

demo: $(STAMP)  ## the ML lifecycle on the embedded control plane, with real offline data
	$(BIN)/mlkube demo

unit: $(STAMP)  ## pure tests only: no processes, no sockets (tests/unit/conftest.py refuses both)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration

crds: $(STAMP)  ## regenerate crds/ from operator/mlkube/api
	$(BIN)/mlkube crds crds/

static: $(STAMP)  ## lint, format and layering checks as tests
	$(BIN)/pytest tests/static

lint: $(STAMP)  ## ruff, the formatter and the layering contracts (all also run in `make test`)
	$(BIN)/ruff check operator tests benchmarks
	$(BIN)/ruff format --check operator tests benchmarks
	$(BIN)/lint-imports

format: $(STAMP)  ## apply ruff format
	$(BIN)/ruff format operator tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mlkube .mlkube-demo

-include mk/kind.mk
