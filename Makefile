# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
MLLP_PORT ?= 2575
# Links in e-mails and SMS point here; derived from HOST and PORT unless given.
RXHUB_PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)
# Given to the demo's commands only: exported globally it would leak into `make test`.
DEMO_ENV := DJANGO_HTTPS=0 RXHUB_PUBLIC_BASE_URL=$(RXHUB_PUBLIC_BASE_URL)

.PHONY: install browser demo serve test test-fast lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

# Runs the whole application on the embedded defaults (SQLite + django-q2 ORM broker).
demo: install
	$(DEMO_ENV) $(PY) manage.py migrate --noinput
	$(DEMO_ENV) $(PY) manage.py seed_demo --if-empty
	$(DEMO_ENV) $(PY) manage.py collectstatic --noinput -v0
	$(DEMO_ENV) $(PY) manage.py sync_schedules
	@$(DEMO_ENV) $(PY) manage.py demo_banner --host $(HOST) --port $(PORT) --mllp-port $(MLLP_PORT)
	$(DEMO_ENV) $(PY) manage.py serve --host $(HOST) --port $(PORT) --mllp-port $(MLLP_PORT)

# Browser tests drive Debian's Chromium; install it when missing (needs root, as on CI).
browser:
	@command -v chromium >/dev/null 2>&1 || (echo "Installing Debian's chromium for browser tests" && \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium)

# The whole test suite (unit, API, interop corpus, browser tests with Debian's Chromium).
test: install browser
	$(PY) -m pytest -p no:cacheprovider -n 2 --dist loadgroup

test-fast: install
	$(PY) -m pytest -p no:cacheprovider -m "not e2e" -x

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) db.sqlite3 var staticfiles
