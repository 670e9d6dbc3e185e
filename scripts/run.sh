#!/usr/bin/env bash
# `make run`: the embedded stack (SQLite + filesystem broker, one worker, the dashboard on 127.0.0.1:8501).
set -eu
exec .venv/bin/skipweb up
