#!/usr/bin/env bash
# Every GPU figure in one table (bench/gpu.py): the one-click demo end to end, ResNet-56 epoch vs an
# airbench-style hand loop (compiled, eager, CUDA graphs), probe cost, CUDA tests, runs-per-GPU packing.
# One call keeps to a 6-minute budget (--budget) and ends by printing the call that takes the steps left.
#   bash bench/gpu.sh            # on a CUDA machine
#   bash bench/gpu.sh --only 4,6 # some steps (numbered as in bench/gpu.py's docstring)
# On the lent device machine the database, broker and chart libraries travel as wheels: bash bench/gpu_wheels.sh.
#   bash bench/gpu.sh --dry-run  # tiny, on the CPU
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
exec "$PY" bench/gpu.py "$@"
