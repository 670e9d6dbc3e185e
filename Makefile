# Two commands do all set-up on a fresh machine with Python 3.11: `make run` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast install services system-deps lint bench demo clean

# Quiet unless something fails: `make run` prints the URL and one line per worker, not pip's output.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@echo "installing skipweb and its requirements into $(VENV) (the first time: some minutes)"
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

# Bytecode for skipweb's own modules, written here because the environment may forbid it at run time
# (PYTHONDONTWRITEBYTECODE, as in this sandbox and most images): otherwise every CLI call, worker and
# dashboard start compiles them again (0.1 s for all). Only changed files are compiled.
install: $(STAMP)
	@$(PY) -m compileall -q skipweb db workers

# Debian packages the browser tests need (Chromium for Playwright; its own download cannot work here).
system-deps:
	@bash scripts/system-deps.sh

# PostgreSQL, Redis and RabbitMQ for the integration tests: start whichever is down.
services:
	@bash scripts/services.sh

test: install system-deps services
	$(PY) -m pytest

# The edit loop's tier (README "Tests"): no test that trains or starts processes for more than a few seconds
# (slow), needs PostgreSQL, Redis or RabbitMQ (services) or drives Chromium (browser); no services started.
# One torch thread: the tests' models are small, and two threads per process on 2 shared cores spin against
# each other (measured: 3 m 34 s with torch's default, 2 m 0 s with one, both at load 2-3).
test-fast: install
	OMP_NUM_THREADS=1 $(PY) -m pytest -m "not slow and not services and not browser" --durations=10

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) bench/train_overhead.py

run: install
	@bash scripts/run.sh

clean:
	rm -rf .pytest_cache .ruff_cache
