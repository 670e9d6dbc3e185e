"""The model zoo. Importing this package registers every family.

    >>> from skipweb.models import get_model, list_models
    >>> net = get_model("resnet", depth=20, shortcut="A")
"""

from skipweb.models import densenet as _densenet  # noqa: E402,F401
from skipweb.models import highway as _highway  # noqa: E402,F401
from skipweb.models import mlp as _mlp  # noqa: E402,F401

# Registration order is the order families are shown in the CLI and the dashboard.
from skipweb.models import resnet as _resnet  # noqa: E402,F401  (registers plain + resnet)
from skipweb.models import tv as _tv  # noqa: E402,F401
from skipweb.models import unet as _unet  # noqa: E402,F401
from skipweb.models._common import count_params
from skipweb.models._registry import (
    COMMON_CHOICES,
    ModelConfigError,
    ModelInfo,
    ProbeLayer,
    get_info,
    get_model,
    list_models,
    register_model,
)

__all__ = [
    "COMMON_CHOICES",
    "ModelConfigError",
    "ModelInfo",
    "ProbeLayer",
    "count_params",
    "get_info",
    "get_model",
    "list_models",
    "register_model",
]
