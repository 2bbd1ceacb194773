# One entry point. `make demo` and `make test` each install what they need on a fresh Debian
# machine (virtualenv from the pinned lock, clamd from Debian) before running.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.lock | cut -c1-16)
export PYTHONPATH := $(CURDIR)

.PHONY: help install system demo test lint format up down lock bench bench-quick clean

help:
	@echo "make demo   - run the whole pipeline on sample data through Airflow and print a summary"
	@echo "make test   - run the test suite against real SFTP, SMTP and ClamAV services"
	@echo "make up     - start the local services and airflow standalone (UI on :8080); make down stops them"
	@echo "make lint   - ruff check and format check;  make lock - re-pin requirements.lock"

$(STAMP): requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 is required, found {sys.version}"'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==0.13.8
	$(VENV)/bin/uv pip sync --quiet --python $(PY) requirements.lock
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

system:
	bash tools/bootstrap_system.sh

demo: install system
	$(PY) -m tools.demo

test: install
	bash tools/bootstrap_system.sh --require-clamd --with-chromium
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

up: install system
	$(PY) -m tools.stack up

down:
	@if [ -x $(PY) ]; then $(PY) -m tools.stack down; fi

lock: install
	$(VENV)/bin/uv pip compile --quiet --python-version 3.11 requirements.txt -o requirements.lock

bench: install system
	$(PY) -m bench.run

bench-quick: install system
	$(PY) -m bench.run --quick

clean: down
	rm -rf .airflow .local
