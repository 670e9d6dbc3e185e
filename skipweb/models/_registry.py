"""The one model registry: every family registers a builder plus the options and depths it accepts.

A family is data the CLI, the spec validator and the dashboard all read: its options (name -> allowed
values), its defaults, and a depth rule. ``get_model`` validates before it builds, so bad input fails
with one line naming the valid choices.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Options every family may declare; the same names are used by the CLI (--no-skip etc.), the spec and the UI.
COMMON_CHOICES: dict[str, tuple] = {
    "norm": ("batch", "none"),
    "act": ("relu", "tanh", "sigmoid"),
    "init": ("kaiming", "xavier", "small"),
}


# What each option means, as the CLI's help and the Launch form's tooltips say it. An option without a line
# here is still offered everywhere, under its name.
OPTION_HELP: dict[str, str] = {
    "width": "base width (channels or hidden units)",
    "norm": "normalisation layer",
    "act": "activation",
    "init": "weight initialisation (small: N(0, 0.01))",
    "block": "resnet block",
    "shortcut": "resnet shortcut: A zero-pads, B is a 1x1 projection",
    "no_skip": "the family's plain twin: no skip connections",
    "zero_init_residual": "zero the last BatchNorm of each residual branch so every block starts as the identity "
                          "(torchvision's option; Goyal et al. 2017). Off by default",
    "growth": "densenet growth rate k",
    "bc": "densenet-BC: bottlenecks and compression 0.5",
    "gate_bias": "highway gate bias (negative: the gates carry the input at first)",
    "skip": "unet long skips",
    "up": "unet upsampling",
    "pretrained": "torchvision's ImageNet weights",
}  # fmt: skip


from skipweb.errors import ModelConfigError  # noqa: E402, F401  (re-exported: the registry's error)


@dataclass(frozen=True)
class ProbeLayer:
    """One weight layer whose gradients we record, in forward (depth) order.

    ``skip`` is True when a skip connection bridges the layer (a gradient can reach the layers below it
    without passing through it): the branch layers of residual/highway/dense blocks, U-Net encoder and
    decoder convs joined by long skips, shortcut projections. The plain twin of a family has none.
    """

    index: int
    name: str
    skip: bool
    params: int


@dataclass(frozen=True)
class ModelInfo:
    name: str
    builder: str | Callable[..., Any]  # "module:function", imported on first build (so no torch before it)
    task: str  # "classification" | "segmentation"
    summary: str
    depth_rule: str  # human text, e.g. "6n+2 (20, 32, 44, 56, 110, ...)"
    check_depth: Callable[[int, dict], str | None]  # returns an error message or None
    example_depths: tuple[int, ...]
    options: dict[str, tuple] = field(
        default_factory=dict
    )  # option -> allowed values; bools are (False, True)
    defaults: dict = field(default_factory=dict)
    paper: str = ""
    check_image: Callable[[int, int], str | None] | None = None  # (depth, image size) → an error or None

    def build(self, **kwargs: Any) -> Any:
        """Call the builder (an ``nn.Module`` comes back), importing its module the first time."""
        builder = self.builder
        if isinstance(builder, str):
            module, _, name = builder.partition(":")
            builder = getattr(importlib.import_module(module), name)
        return builder(**kwargs)

    def valid_depths(self, opts: dict | None = None, upto: int = 2000) -> list[int]:
        o = {**self.defaults, **(opts or {})}
        return [d for d in range(1, upto + 1) if self.check_depth(d, o) is None]

    def resolve(self, depth: int, opts: dict) -> dict:
        """Validate depth and options; return the full option dict (defaults filled in)."""
        unknown = sorted(set(opts) - set(self.options))
        if unknown:
            valid = ", ".join(sorted(self.options)) or "none"
            raise ModelConfigError(f"family '{self.name}' has no option {unknown[0]!r}; its options: {valid}")
        full = {**self.defaults, **opts}
        for key, value in full.items():
            allowed = self.options.get(key)
            if allowed and value not in allowed:
                choices = ", ".join(str(a) for a in allowed)
                raise ModelConfigError(f"{self.name}: {key}={value!r} is not valid; choose one of: {choices}")
        if not isinstance(depth, int) or isinstance(depth, bool):
            raise ModelConfigError(f"{self.name}: depth must be an integer")
        err = self.check_depth(depth, full)
        if err:
            raise ModelConfigError(f"{self.name}: depth {depth} is not valid: {err}")
        return full


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(info: ModelInfo) -> ModelInfo:
    if info.name in _REGISTRY:
        raise ValueError(f"model family {info.name!r} is already registered")
    _REGISTRY[info.name] = info
    return info


def list_models() -> list[str]:
    return list(_REGISTRY)


def get_info(name: str) -> ModelInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelConfigError(
            f"unknown model family {name!r}; choose one of: {', '.join(_REGISTRY)}"
        ) from None


def declared_options(families: list[str] | None = None) -> dict[str, tuple[list, list[str]]]:
    """option → (every value a family allows, the families declaring it), over ``families`` (default: all),
    in registration order: what the CLI and the Launch form offer."""
    out: dict[str, tuple[list, list[str]]] = {}
    for name in list_models() if families is None else families:
        for option, allowed in get_info(name).options.items():
            values, owners = out.setdefault(option, ([], []))
            values += [a for a in allowed if a not in values]
            owners.append(name)
    return out


def get_model(
    name: str,
    *,
    depth: int,
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 32,
    **opts,
) -> Any:
    """Build a registered family. ``opts`` are the family's declared options (validated here)."""
    info = get_info(name)
    full = info.resolve(depth, opts)
    return info.build(
        depth=depth, num_classes=num_classes, in_channels=in_channels, image_size=image_size, **full
    )
