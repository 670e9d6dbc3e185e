"""The model zoo. Importing this package registers every family.

>>> from skipweb.models import get_model, list_models
>>> net = get_model("resnet", depth=20, shortcut="A")
"""
# ruff: noqa: I001, E402, F401  (registration order below is the order users see families in)

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
from skipweb.models._common import BlockLayer, count_params

from skipweb.models import resnet as _resnet  # registers plain + resnet
from skipweb.models import densenet as _densenet
from skipweb.models import highway as _highway
from skipweb.models import unet as _unet
from skipweb.models import mlp as _mlp
from skipweb.models import tv as _tv

__all__ = [
    "BlockLayer",
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
