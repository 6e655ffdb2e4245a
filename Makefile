# The two commands of the README: `make run` and `make test`. Everything they need is
# installed here, into .venv, so a fresh machine needs nothing done by hand.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export CLIENTELA_HOME ?= $(CURDIR)/instance
ADMIN_EMAIL ?= admin@example.com
HOST ?= 127.0.0.1
PORT ?= 5000

PHONY_EXTRA := chromium
.PHONY: chromium run test test-examples install install-test install-bench docs screenshots bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

# The browser tests drive Debian's Chromium (Playwright's own download cannot reach its
# CDN here); installed once per machine when missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test chromium

$(VENV)/.installed-bench: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $@ $(VENV)/.installed

install-bench: $(VENV)/.installed-bench

run: install
	$(BIN)/clientela init --admin-email $(ADMIN_EMAIL)
	$(BIN)/clientela demo
	$(BIN)/clientela serve --host $(HOST) --port $(PORT)

test: install-test
	$(MAKE) --no-print-directory test-examples
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

# The example plugin is tested as an integrator would: installed from its own folder
# (into a separate target, so the main environment stays as it was) and run with its own
# tests, which use the clientela.testing pytest plugin.
EXAMPLES_SITE := $(CURDIR)/$(VENV)/examples-site
test-examples: install-test
	rm -rf $(EXAMPLES_SITE)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --target $(EXAMPLES_SITE) examples/clientela-loyalty
	cd examples/clientela-loyalty && PYTHONPATH=$(EXAMPLES_SITE) $(CURDIR)/$(BIN)/python -m pytest -q -p no:cacheprovider

# `make bench` runs every scenario (about 15 minutes on 2 cores); one scenario:
# `make bench SCENARIO=search SIZE=100000`. PostgreSQL is found at CLIENTELA_BENCH_PG
# (default: the local server, user postgres). Results: bench/results/<time>.json.
bench: install-bench
	$(BIN)/python -m bench.run $(if $(SCENARIO),--scenario $(SCENARIO)) $(if $(SIZE),--size $(SIZE)) $(if $(REPEATS),--repeats $(REPEATS))

docs: install
	$(BIN)/clientela docs hooks -o docs/hooks.md

# the pictures of docs/ui.md, taken by the browser tests (SQLite run)
screenshots: install-test
	CLIENTELA_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest -q -p no:xdist tests/test_web_browser.py tests/test_web_customers_browser.py tests/test_web_operational_browser.py tests/test_web_collab_browser.py tests/test_web_prm_browser.py

clean:
	rm -rf $(VENV) build *.egg-info
