# The two commands of a fresh machine: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PG_URL ?= postgres://postgres@127.0.0.1:5432/gpuq

.PHONY: run test test-gpu lint venv system-deps bundle bundle-engine clean

$(INSTALLED): requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(INSTALLED)

venv: $(INSTALLED)

## The whole system on this machine (Redis, web, releaser, one worker per GPU or a CPU worker, Flower).
run: $(INSTALLED)
	DEBUG=$${DEBUG:-true} $(PY) manage.py runlocal

## System packages the tests drive for real (nginx, Chromium, docker-compose, Podman, Redis), where missing.
system-deps:
	tests/install-system-deps.sh

## The test suite: on PostgreSQL where one answers on 127.0.0.1:5432, then the core again on SQLite.
test: $(INSTALLED) system-deps
	tests/run.sh

## On a GPU host, after `source .device/bootstrap.sh`.
test-gpu:
	python3 -m pytest -m gpu -q

lint: $(INSTALLED)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

## The offline bundle for a GPU host (git-ignored), see ../shared/gpu-host/README.md.
## Browsers and fuzzers stay behind: the GPU host runs `pytest -m gpu` and the benchmarks.
bundle:
	grep -vE '^(playwright|schemathesis|ruff|mypy|types-)' requirements.txt > /tmp/gpuq-gpu-host-requirements.txt
	../shared/gpu-host/bundle.sh /tmp/gpuq-gpu-host-requirements.txt .device
	# bundle.sh leaves out every pytest-* line (the host has pytest); we need pytest-django there.
	python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d .device/whl pytest-django
	# A PostgreSQL inside a wheel, so the benchmarks there run on the database production uses.
	python3 -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform any -d .device/whl pgserver
	# The host's image has these already (KINDS.md's list): left behind so the engine fits in the 64 MiB.
	rm -f .device/whl/pygments-* .device/whl/hypothesis-* .device/whl/pyyaml-* .device/whl/psutil-*

## The container engine for a GPU host: Podman 5.4 from Debian trixie, unpacked and trimmed (git-ignored).
## On the host, benchmarks/gpu-host-check.sh starts it (benchmarks/engine-start.sh).
bundle-engine:
	benchmarks/engine-bundle.sh .device/engine trixie

clean:
	rm -rf $(VENV) var staticfiles test-artifacts
