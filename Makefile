# The two commands of the README: `make run` and `make test`. Everything they need is
# installed here, into .venv, so a fresh machine needs nothing done by hand.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export CLIENTELA_HOME ?= $(CURDIR)/instance
ADMIN_EMAIL ?= admin@example.com
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test install install-test docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(BIN)/clientela init --admin-email $(ADMIN_EMAIL)
	$(BIN)/clientela demo
	$(BIN)/clientela serve --host $(HOST) --port $(PORT)

test: install-test
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

docs: install
	$(BIN)/clientela docs hooks -o docs/hooks.md

clean:
	rm -rf $(VENV) build *.egg-info
