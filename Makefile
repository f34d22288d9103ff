# Two commands for a newcomer: `make run` (local stack with demo data) and `make test`.
# Everything else here is what those two need; nothing is installed outside .venv and node_modules.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup run test lint bench clean infra-setup infra-check browser-setup openapi

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
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

test: lint infra-setup browser-setup
	$(PY) -m pytest

# Bicep checks (pycep-parser, checkov) live in their own virtualenv: checkov's pins would
# clash with the app's. tests/infra runs them; infra-check is the same scan on its own.
INFRA_VENV := .venv-infra

infra-setup: $(INFRA_VENV)/.installed

$(INFRA_VENV)/.installed: requirements-infra.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(INFRA_VENV)/bin/python -m pip install --quiet -r requirements-infra.txt
	@touch $@

infra-check: infra-setup
	$(INFRA_VENV)/bin/checkov --directory infra --framework bicep secrets --skip-download --compact --quiet

# The committed API contract, regenerated from the app (tests/unit/test_openapi.py checks it).
openapi: setup
	$(PY) -m functions.openapi > docs/openapi.json

# The operations-page test drives Debian's Chromium (Playwright never downloads a browser here).
browser-setup:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends chromium; }

clean:
	rm -rf $(VENV) $(INFRA_VENV) node_modules .run .pytest_cache .mypy_cache .ruff_cache test-artifacts
