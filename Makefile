# Frontier: `make run` starts the whole stack on the embedded default, `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# The CPU build of torch in the locks: the file on the development machines' disk, else PyTorch's
# CPU wheel page. The lock's hash decides which file is accepted, wherever it comes from.
TORCH_WHEELS ?= $(if $(wildcard /opt/wheels/torch-2.13.0+cpu-*.whl),/opt/wheels,https://download.pytorch.org/whl/cpu/torch/)

.PHONY: install lock upgrade browser run test test-fast test-integration migrate clean

# `.venv` holds exactly requirements.txt, every file hash-checked; packages not in the lock are
# removed. uv does it (under a second when nothing changed, offline); pip only bootstraps uv.
install: $(UV)
	$(UV) pip sync --quiet --python $(PY) --require-hashes --compile-bytecode --find-links $(TORCH_WHEELS) requirements.txt

$(UV): requirements-uv.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements-uv.txt
	touch $@

# Regenerate the locks from requirements.in (README "Dependencies"): `make lock` after editing
# requirements.in or requirements-excludes.txt keeps every other pin; `make upgrade` moves every
# transitive pin to the newest release the .in allows (`make upgrade PACKAGE=name` just one).
LOCK := $(UV) pip compile --quiet --generate-hashes --python-version 3.11 \
	--python-platform x86_64-manylinux_2_28 \
	--excludes requirements-excludes.txt --custom-compile-command "make lock" $(LOCK_UPGRADE)
lock: $(UV)
	mkdir -p var/lock
	echo torchvision > var/lock/cpu-excludes.txt
	$(LOCK) --find-links $(TORCH_WHEELS) --excludes var/lock/cpu-excludes.txt requirements.in -o requirements.txt
	sed -n 's/^\([A-Za-z0-9][^ ]*==[^ ]*\).*/\1/p' requirements.txt | grep -v '^torch==' > var/lock/cpu-pins.txt
	$(LOCK) --overrides requirements-gpu.in -c var/lock/cpu-pins.txt requirements.in -o requirements-gpu.txt
	grep '^uv==' requirements.in > var/lock/uv.in
	$(LOCK) --no-deps var/lock/uv.in -o requirements-uv.txt

upgrade:
	$(MAKE) lock LOCK_UPGRADE="$(if $(PACKAGE),--upgrade-package $(PACKAGE),--upgrade)"

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

# The fast tier: no worker or web processes, no browser, no model training (about 2.5 min on 2 cores).
test-fast: install
	env -u DATABASE_URL -u CELERY_BROKER_URL FRONTIER_VAR_DIR=$(CURDIR)/var/test-fast \
		$(PY) -m pytest -m "not integration and not browser and not slow" $(PYTEST_ARGS)

# The worker-process tests alone on the embedded default (SQLite + filesystem broker).
test-integration: install browser
	env -u DATABASE_URL -u CELERY_BROKER_URL FRONTIER_VAR_DIR=$(CURDIR)/var/test-embedded \
		$(PY) -m pytest -m integration $(PYTEST_ARGS)

clean:
	rm -rf var/test var/test-embedded var/test-fast .pytest_cache
