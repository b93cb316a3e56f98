# Two commands: `make run` brings the stack up, `make test` runs the whole suite.
# Both set themselves up (.venv, pip installs, the demo model).
# `make celery ARGS='inspect active'` runs Celery's CLI against `make run`'s stack.
# `make worker` starts one worker with the settings in the environment (a fleet's host: docs/fleet.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_MODEL := .cache/models/tiny-sd15

.PHONY: run test lint install demo-model bench celery worker

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[worker,onnx,sr,sr-train,flower,s3,run,cli,dev]'
	touch $(STAMP)

install: $(STAMP)

demo-model: install
	$(PY) -m workers.tiny_models --out $(DEMO_MODEL)

run: demo-model
	$(PY) -m scripts.run_stack

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m scripts.check_no_timing_asserts tests

test: lint
	$(PY) -m pytest

bench: demo-model
	$(PY) -m bench.overhead

celery:
	$(PY) -m scripts.celery_cli $(ARGS)

worker: install
	$(PY) -m tasks.worker
