"""skipweb's tests, grouped by the package they test (tests/<package>/), the house-wide ones here.
A package, so that every test module has a unique dotted name and helpers import as ``tests.…``."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the checkout: app.py, bench/, docs/, pyproject.toml
