#!/usr/bin/env bash
# The wheels bench/gpu.sh needs on the lent GPU machine, into .whl/ (git-ignored). Its image (Python 3.12) has
# torch, numpy, scikit-learn, scipy, pandas and rich, but not the database, broker, settings and chart
# libraries below: they travel as wheels, at the versions this checkout's .venv runs (the last lent machine's
# first call lost its demo steps to one missing wheel: tzlocal, Celery's). Then, in the device call, carry
# [".whl"] and begin the command with
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
#     .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD && bash bench/gpu.sh
# (bench/gpu.py checks the imports first and names what is missing, before it spends any of its budget).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
NEED=(sqlalchemy greenlet alembic mako pydantic pydantic-core pydantic-settings python-dotenv typing-inspection
  annotated-types typing-extensions celery kombu amqp vine billiard click click-didyoumean click-repl click-plugins
  prompt-toolkit wcwidth tzdata tzlocal python-dateutil six typer shellingham plotly narwhals)
pins=()
for name in "${NEED[@]}"; do  # this .venv's version, or the newest where it has none (tzdata: the OS has one here)
  v=$("$PY" -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: pass" "$name")
  pins+=("$name${v:+==$v}")
done
rm -rf .whl && mkdir -p .whl
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl "${pins[@]}"
echo "$(ls .whl | wc -l) wheels, $(du -sh .whl | cut -f1), in .whl/ for: ${pins[*]}"
