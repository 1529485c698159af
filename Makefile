# Brobygger task runner. `make` (default) runs the tests and linters.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PTB_TIMEDELTA := true

.PHONY: default setup chat index test pytest lint format eval bench run clean

default: test

# torch first, from the local CPU wheel: otherwise pip pulls several GB of CUDA packages.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

index: setup
	$(BIN)/brobygger reindex

# Quick start (1): install everything, build the index if needed, talk to the bot here.
chat: setup
	@test -e index/current || $(BIN)/brobygger reindex
	$(BIN)/brobygger chat

# Quick start (2): the whole test suite, then the linters (Python and the Dockerfile) and the
# type checker.
test: setup pytest lint

pytest: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check bot tests benchmarks
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

format: setup
	$(BIN)/ruff format bot tests benchmarks
	$(BIN)/ruff check --fix .

eval: setup
	$(BIN)/brobygger eval --distractors --previous --output docs/eval.md --benchmarks docs/benchmarks.md

bench: setup
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.incremental --write

run: setup
	$(BIN)/brobygger run

clean:
	rm -rf $(VENV) index/current index/builds data .pytest_cache .mypy_cache .ruff_cache
