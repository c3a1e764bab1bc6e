# Frontier: `make run` starts the whole stack on the embedded default, `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install browser run test test-integration migrate clean

install: $(INSTALLED)

# Re-running is instant: the stamp is newer than the requirement files.
$(INSTALLED): requirements.txt requirements-nodeps.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $@

# Browser tests use Debian's Chromium (Playwright's own browser download is never used).
CHROMIUM := /usr/bin/chromium
browser: $(CHROMIUM)

$(CHROMIUM):
	SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); export DEBIAN_FRONTEND=noninteractive; \
		$$SUDO apt-get install -y -q chromium chromium-driver \
		|| { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium chromium-driver; }

migrate: install
	$(PY) manage.py migrate --noinput

run: migrate
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py runstack

# Tests keep their own var/ (database file, broker folders) apart from `make run`'s.
test: install browser
	FRONTIER_VAR_DIR=$${FRONTIER_VAR_DIR:-$(CURDIR)/var/test} $(PY) -m pytest $(PYTEST_ARGS)

# The worker-process tests alone on the embedded default (SQLite + filesystem broker).
test-integration: install browser
	env -u DATABASE_URL -u CELERY_BROKER_URL FRONTIER_VAR_DIR=$(CURDIR)/var/test-embedded \
		$(PY) -m pytest -m integration $(PYTEST_ARGS)

clean:
	rm -rf var/test var/test-embedded .pytest_cache
