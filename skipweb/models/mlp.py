"""Fully connected nets on flattened images, with or without a residual connection around each hidden layer.

The residual form is the pre-activation unit of He et al. 2016, *Identity Mappings in Deep Residual
Networks* (https://arxiv.org/abs/1603.05027), with one linear layer per unit: ``x + W act(norm(x))``.
Pre-activation keeps the skip path a pure identity from the first hidden layer to the last, and it
makes the no-skip twin the textbook MLP: ``Linear -> [norm -> act -> Linear] * (depth - 1)``.
"""

from __future__ import annotations

import torch
from torch import nn

from skipweb.models._common import Fork, ProbedModel, init_weights, make_act, make_norm, zero_
from skipweb.models._common import zero_init_residual as zero_init_residual_


class MLPBlock(nn.Module):
    """One hidden layer: ``x + fc(act(norm(x)))``, or ``fc(act(norm(x)))`` without the skip."""

    def __init__(self, width: int, *, skip: bool, norm: str, act: str) -> None:
        super().__init__()
        self.norm = make_norm(norm, width, dim=1)
        self.act = make_act(act)
        self.fc = nn.Linear(width, width)
        self.skip_bridged = skip
        self.fork = Fork("add" if skip else "none")

    def zero_last(self) -> None:
        zero_(self.fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs, xb = self.fork(x)
        out = self.fc(self.act(self.norm(xb)))
        return xs + out if self.skip_bridged else out


class MLP(ProbedModel):
    """``depth`` linear layers: stem (in -> width), ``depth - 2`` hidden blocks, head (width -> classes).

    The activation after the stem is the first block's pre-activation; the last block's output goes
    through a final norm + act before the head, as in pre-activation ResNets.
    """

    def __init__(
        self,
        depth: int,
        in_features: int,
        num_classes: int,
        *,
        width: int = 256,
        skip: bool = True,
        norm: str = "batch",
        act: str = "relu",
    ) -> None:
        super().__init__()
        self.skip = skip
        self.stem = nn.Linear(in_features, width)
        self.blocks = nn.Sequential(
            *(MLPBlock(width, skip=skip, norm=norm, act=act) for _ in range(depth - 2))
        )
        self.final = nn.Sequential(make_norm(norm, width, dim=1), make_act(act))
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(torch.flatten(x, 1)))
        return self.head(self.final(x))


def mlp(
    *,
    depth: int,
    num_classes: int,
    in_channels: int,
    image_size: int,
    width: int,
    norm: str,
    act: str,
    init: str,
    no_skip: bool,
    zero_init_residual: bool = False,
) -> MLP:
    """MLP on flattened ``in_channels x image_size x image_size`` inputs; residual unless ``no_skip``.

    Args:
        depth: number of linear layers, 2 to 1000.
        width: units of every hidden layer.
        no_skip: drop the identity around each hidden layer, which gives the plain MLP.
        zero_init_residual: start every residual layer at zero, so each block starts as the identity.
    """
    model = MLP(
        depth,
        in_channels * image_size * image_size,
        num_classes,
        width=width,
        skip=not no_skip,
        norm=norm,
        act=act,
    )
    init_weights(model, init, act)
    if zero_init_residual:
        zero_init_residual_(model)
    return model
