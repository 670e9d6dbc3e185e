#!/usr/bin/env bash
# Every GPU figure in one table (bench/gpu.py): CUDA tests, trainer overhead (bf16 + channels-last + GPU data),
# ResNet-56 epoch vs an airbench-style hand loop (eager and compiled), probe cost. Under 8 minutes on one GPU.
#   bash bench/gpu.sh            # on a CUDA machine
#   bash bench/gpu.sh --dry-run  # tiny, on the CPU
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
exec "$PY" bench/gpu.py "$@"
