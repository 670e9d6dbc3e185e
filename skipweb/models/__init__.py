"""The model zoo. Importing this package registers every family (as data: torch loads on first build).

>>> from skipweb.models import get_model, list_models
>>> net = get_model("resnet", depth=20, shortcut="A")
"""

from __future__ import annotations

from typing import Any

from skipweb.models import families as _families  # noqa: F401 - registers every family
from skipweb.models._registry import (
    COMMON_CHOICES,
    OPTION_HELP,
    ModelConfigError,
    ModelInfo,
    ProbeLayer,
    declared_options,
    get_info,
    get_model,
    list_models,
    register_model,
)

__all__ = [
    "BlockLayer",
    "COMMON_CHOICES",
    "ModelConfigError",
    "ModelInfo",
    "OPTION_HELP",
    "ProbeLayer",
    "count_params",
    "declared_options",
    "get_info",
    "get_model",
    "list_models",
    "register_model",
]


def __getattr__(name: str) -> Any:
    """``BlockLayer`` and ``count_params`` need torch: imported when first asked for."""
    if name in ("BlockLayer", "count_params"):
        from skipweb.models import _common

        return getattr(_common, name)
    raise AttributeError(f"module 'skipweb.models' has no attribute {name!r}")
