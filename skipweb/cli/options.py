"""Options shared by ``train`` and ``submit`` — declared once, with the same names everywhere.

The training options are derived from :class:`skipweb.spec.RunSpec`'s fields: their help text, their
bounds and their choices come from the field, so the CLI cannot drift from the spec. A recipe field
(skipweb.recipes) defaults to None: the dataset's recipe fills it in.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any

import typer
from annotated_types import Ge, Gt, Le

from skipweb.recipes import RECIPE_FIELDS
from skipweb.spec import RunSpec

RECIPE = "(default: the dataset's recipe, see `skipweb recipes`)"


def spec_option(name: str, *flags: str, extra: str = "") -> Any:
    """``Annotated[type | None, typer.Option(...)]`` for the RunSpec field ``name``."""
    field = RunSpec.model_fields[name]
    kind = field.annotation
    choices = typing.get_args(kind) if typing.get_origin(kind) is typing.Literal else ()
    if choices:
        kind = str
    elif typing.get_origin(kind) is not None:  # int | None
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    bounds: dict[str, Any] = {}
    for m in field.metadata:
        if isinstance(m, Ge | Gt):
            bounds["min"] = m.ge if isinstance(m, Ge) else m.gt
        elif isinstance(m, Le):
            bounds["max"] = m.le
    if kind is bool:
        bounds = {}
    text = field.description or name.replace("_", " ")
    if choices:
        text += f": {', '.join(map(str, choices))}"
    if name in RECIPE_FIELDS:
        text += f" {RECIPE}"
    elif field.default is not None and kind is not bool:
        text += f" (default {field.default})"
    flags = flags or (f"--{name.replace('_', '-')}",)
    option = typer.Option(*flags, help=text + extra, show_default=False, **bounds)
    return Annotated[kind if kind is bool else kind | None, option]


def spec_default(name: str) -> Any:
    """The value a CLI option of field ``name`` starts at: None for a recipe field (the recipe decides)."""
    if name in RECIPE_FIELDS:
        return None
    return RunSpec.model_fields[name].default


Epochs = spec_option("epochs")
Subset = spec_option("subset")
BatchSize = spec_option("batch_size")
Optimizer = spec_option("optimizer")
Lr = spec_option("lr")
WeightDecay = spec_option("weight_decay")
Schedule = spec_option("schedule")
Warmup = spec_option("warmup_epochs", "--warmup")
ProbeEvery = spec_option("probe_every")
Device = spec_option("device")
Amp = spec_option("amp")
ChannelsLast = spec_option("channels_last")
Compile = spec_option("compile", "--compile")

ModelOpt = Annotated[str | None, typer.Option(show_default=False)]
Shortcut = Annotated[str | None, typer.Option("--shortcut", help="resnet shortcut: A (zero-pad) or B (1x1 projection)")]
Block = Annotated[str | None, typer.Option("--block", help="resnet block: basic, bottleneck or preact")]
Growth = Annotated[int | None, typer.Option("--growth", help="densenet growth rate k")]
BC = Annotated[bool, typer.Option("--bc", help="densenet-BC: bottlenecks and compression 0.5")]
Skip = Annotated[str | None, typer.Option("--skip", help="unet long skips: concat, add or none")]
NoSkip = Annotated[bool, typer.Option("--no-skip", help="the family's plain twin: no skip connections")]
Norm = Annotated[str | None, typer.Option("--norm", help="batch or none")]
Act = Annotated[str | None, typer.Option("--act", help="relu, tanh or sigmoid")]
Init = Annotated[str | None, typer.Option("--init", help="kaiming, xavier or small (N(0, 0.01))")]
Width = Annotated[int | None, typer.Option("--width", help="base width (channels or hidden units)")]
ZeroInit = Annotated[bool, typer.Option("--zero-init-residual", help="resnet/mlp: zero the last BatchNorm of each "
                                       "residual branch so every block starts as the identity (torchvision's "
                                       "option; Goyal et al. 2017). Off by default")]
Up = Annotated[str | None, typer.Option("--up", help="unet upsampling: transpose or bilinear")]


def model_options(family: str, **given) -> dict:
    """Keep the options the user set. ``--no-skip`` means each family's plain twin (``skip=none`` for U-Net)."""
    from skipweb.models import get_info

    opts = {k: v for k, v in given.items() if v is not None and v is not False}
    if opts.pop("no_skip", False):
        options = get_info(family).options
        if "no_skip" in options:
            opts["no_skip"] = True
        elif "skip" in options:
            opts["skip"] = "none"
        else:
            opts["no_skip"] = True  # the registry rejects it with the family's valid options
    return opts
