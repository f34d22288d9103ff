# Two commands for a newcomer: `make run` (local stack with demo data) and `make test`.
# Everything else here is what those two need; nothing is installed outside .venv and node_modules.

# Python 3.13 (the version the app runs on in Azure): PATH first, then pyenv's versions
# ($(pyenv root), then ~/.pyenv), whether or not pyenv is set up in this shell.
PYTHON ?= $(shell for p in "$$(command -v python3.13 2>/dev/null)" \
	$$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13 \
	$$HOME/.pyenv/versions/3.13*/bin/python3.13; do \
	[ -n "$$p" ] && [ -x "$$p" ] && "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 13)' \
	2>/dev/null && { echo "$$p"; break; }; done)
NO_PYTHON := Python 3.13 is required and none was found (PATH, pyenv): install it, e.g. \
	'pyenv install 3.13', or run make PYTHON=/path/to/python3.13
VENV := .venv
PY := $(VENV)/bin/python
# The stamp names the Python version: a .venv made with another version is made anew.
STAMP := .installed-py313

.PHONY: setup run test lint bench clean infra-setup infra-check browser-setup openapi bytecode

setup: $(VENV)/$(STAMP) node_modules/.installed

$(VENV)/$(STAMP): requirements.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "$(NO_PYTHON)"; exit 1; }
	$(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

run: setup
	$(PY) -m devtools.stack run

lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy

# Most tests wait on brokers, locks and timers rather than the CPU, so they run in parallel
# workers; a module's tests stay together on one worker (its private stacks are per module).
# TEST_WORKERS=0 runs them in this process, one after the other.
TEST_WORKERS ?= 4

test: lint infra-setup browser-setup
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# Bicep checks (pycep-parser, checkov) live in their own virtualenv: checkov's pins would
# clash with the app's. tests/infra runs them; infra-check is the same scan on its own.
INFRA_VENV := .venv-infra

infra-setup: $(INFRA_VENV)/$(STAMP)

$(INFRA_VENV)/$(STAMP): requirements-infra.txt
	@test -n "$(PYTHON)" || { echo "$(NO_PYTHON)"; exit 1; }
	$(PYTHON) -m venv --clear $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(INFRA_VENV)/bin/python -m pip install --quiet -r requirements-infra.txt
	@touch $@

infra-check: infra-setup
	$(INFRA_VENV)/bin/checkov --directory infra --framework bicep secrets --skip-download --compact --quiet

# The committed API contract, regenerated from the app (tests/unit/test_openapi.py checks it).
openapi: setup
	$(PY) -m functions.openapi > docs/openapi.json

# Before publishing: the app's own modules as checked-hash .pyc files (PEP 552: used while the
# source's hash matches, whatever the file times after packaging). Flex Consumption runs the
# app from a read-only package, where Python cannot cache bytecode, so without these every
# cold start compiles the app's modules again (docs/benchmarks.md).
bytecode:
	@test -n "$(PYTHON)" || { echo "$(NO_PYTHON)"; exit 1; }
	$(PYTHON) -m compileall -q -f --invalidation-mode checked-hash function_app.py functions shared

# The operations-page test drives Debian's Chromium (Playwright never downloads a browser here).
browser-setup:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends chromium; }

clean:
	rm -rf $(VENV) $(INFRA_VENV) node_modules .run .pytest_cache .mypy_cache .ruff_cache test-artifacts
