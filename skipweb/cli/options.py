"""Options shared by ``train`` and ``submit`` — declared once, with the same names everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

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
