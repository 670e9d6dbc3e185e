# Two commands do all set-up on a fresh machine with Python 3.11: `make run` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test install services system-deps lint bench demo clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

install: $(STAMP)

# Debian packages the browser tests need (Chromium for Playwright; its own download cannot work here).
system-deps:
	@bash scripts/system-deps.sh

# PostgreSQL, Redis and RabbitMQ for the integration tests: start whichever is down.
services:
	@bash scripts/services.sh

test: install system-deps services
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) bench/train_overhead.py

run: install
	@bash scripts/run.sh

clean:
	rm -rf .pytest_cache .ruff_cache
