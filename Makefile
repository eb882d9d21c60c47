# `make demo` and `make test` set up everything they need on a fresh Debian machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# schemathesis has a venv of its own: its hypothesis and pytest plugins would slow every pytest
# subprocess onwatch's tests start. tests/web/test_schemathesis.py runs its CLI from there.
ST_VENV ?= .venv-schemathesis
ST_STAMP := $(ST_VENV)/.installed
# pytest-playwright goes to a folder of its own too: in .venv its plugin would load into every
# pytest process. tests/runner/test_pytest_playwright.py puts it on its subprocess's PYTHONPATH.
# playwright and pytest, its other requirements, come from .venv.
PWT_DIR ?= .pytest-playwright
PWT_STAMP := $(PWT_DIR)/.installed
# Most end-to-end tests wait on a subprocess, a daemon or a browser: two workers keep both cores
# busy. Whole files go to one worker, so a module's servers start once.
PYTEST_PARALLEL ?= -n 2 --dist loadfile

.PHONY: demo test test-unit lint bench setup system-deps clean

demo: $(STAMP)
	$(BIN)/onwatch demo

test: system-deps $(STAMP) $(ST_STAMP) $(PWT_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy --strict src
	$(BIN)/python -m pytest $(PYTEST_PARALLEL)

# The unit tier: no subprocess, no server process, no browser, no PostgreSQL (see README).
test-unit: $(STAMP)
	$(BIN)/python -m pytest -m "not e2e"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy --strict src

bench: $(STAMP)
	$(BIN)/python bench/once_overhead.py
	$(BIN)/python bench/large_run.py
	$(BIN)/python bench/alert_latency.py
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/browser_journeys.py
	$(BIN)/python bench/secret_masking.py
	$(BIN)/python bench/process_sweep.py
	$(BIN)/python bench/env_build.py

setup: $(STAMP)

# PostgreSQL serves the tests of the PostgreSQL backend and of database outages;
# Alertmanager the tests of the alertmanager channel; Prometheus the checks of the shipped rules
# and dashboard queries; Chromium the dashboard tests in a real browser. All on 127.0.0.1 only.

system-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v prometheus-alertmanager >/dev/null 2>&1 || missing="$$missing prometheus-alertmanager"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null 2>&1 || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing (needed by the tests)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml
	@if ! $(PYTHON) -c "import venv, ensurepip" >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq python3-venv >/dev/null; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Order-only on $(STAMP): that recipe makes sure python3-venv is there.
$(ST_STAMP): | $(STAMP)
	$(PYTHON) -m venv $(ST_VENV)
	$(ST_VENV)/bin/python -m pip install -q --upgrade pip
	$(ST_VENV)/bin/python -m pip install -q 'schemathesis>=4,<5'
	touch $(ST_STAMP)

$(PWT_STAMP): | $(STAMP)
	$(BIN)/python -m pip install -q --target $(PWT_DIR) --no-deps pytest-playwright pytest-base-url python-slugify text-unidecode
	touch $(PWT_STAMP)

clean:
	rm -rf $(VENV) $(ST_VENV) $(PWT_DIR) onwatch-demo .onwatch build src/*.egg-info
