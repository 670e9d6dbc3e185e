"""Convolutional highway networks: the CIFAR ResNet trunk with gated instead of additive skips.

- Srivastava, Greff & Schmidhuber 2015, *Highway Networks*, https://arxiv.org/abs/1505.00387, and
  *Training Very Deep Networks*, https://arxiv.org/abs/1507.06228.

Each block computes ``y = H(x) * T(x) + x * (1 - T(x))`` with ``T = sigmoid(gate(x))``. H is the
two-conv body of the ResNet basic block, so with ``no_skip`` the net is exactly the ``plain`` net of
the same depth: the only difference between the three families is what happens on the skip path.
"""

from __future__ import annotations

import torch
from torch import nn

from skipweb.models._common import Fork, init_weights, make_act, make_norm
from skipweb.models.resnet import CifarResNet, conv3x3, make_shortcut


class HighwayMerge(nn.Module):
    """``h * t + carry * (1 - t)``. A module of its own so a forward hook sees the gate values ``t``."""

    def forward(self, h: torch.Tensor, carry: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return h * t + carry * (1.0 - t)


class HighwayBlock(nn.Module):
    """A highway layer whose transform H is two 3x3 convs (post-activation, like the ResNet basic block).

    The gate is a 3x3 conv with bias: the paper uses "the same sized receptive fields" for H and T in
    its convolutional highway nets (arXiv 1507.06228, Sec. 2), and it must stride like H at stage
    transitions. Where the shape changes, the carry path is option A (subsample + zero-pad), so the
    carry itself adds no parameters. ``skip=False`` builds neither gate nor carry: ``y = H(x)``.
    """

    expansion = 1
    layers = 2  # weight layers of H; the gate is not counted in the depth, as in the paper
    preact = False

    def __init__(
        self, in_planes: int, planes: int, stride: int, *, shortcut: str, skip: bool, norm: str, act: str
    ):
        super().__init__()
        bias = norm == "none"
        self.conv1 = conv3x3(in_planes, planes, stride, bias)
        self.bn1, self.act1 = make_norm(norm, planes), make_act(act)
        self.conv2 = conv3x3(planes, planes, 1, bias)
        self.bn2, self.act2 = make_norm(norm, planes), make_act(act)
        self.gate = conv3x3(in_planes, planes, stride, bias=True) if skip else None
        self.carry = make_shortcut("A", in_planes, planes, stride, norm) if skip else None
        self.merge = HighwayMerge() if skip else None
        self.skip_bridged = skip
        self.fork = Fork("gate" if skip else "none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs, xb = self.fork(x)  # the carry is the skip path; H and the gate T are the branch
        h = self.act2(self.bn2(self.conv2(self.act1(self.bn1(self.conv1(xb))))))
        if self.gate is None:
            return h
        t = torch.sigmoid(self.gate(xb))
        self.fork.gate(t)
        return self.merge(h, self.carry(xs), t)


def highway(
    *, depth: int, image_size: int, init: str, gate_bias: float, no_skip: bool, **opts
) -> CifarResNet:
    """Convolutional highway net on the CIFAR ResNet layout (https://arxiv.org/abs/1507.06228).

    Args:
        depth: weight layers on the transform path, 6n+2 like the plain net.
        image_size: unused; global average pooling makes the net size-agnostic.
        gate_bias: initial bias of every gate; negative values start the blocks carrying (T ~ 0.12 at
            -2), which is what let the paper train nets hundreds of layers deep.
        no_skip: drop gate and carry, ``y = H(x)``, which is the plain net.
        opts: num_classes, in_channels, width, norm, act.
    """
    model = CifarResNet(HighwayBlock, (depth - 2) // 6, skip=not no_skip, **opts)
    init_weights(model, init, opts["act"])
    # After init_weights, which zeroes every bias: the carry-biased start is the point of the gate.
    for module in model.modules():
        if isinstance(module, HighwayBlock) and module.gate is not None:
            nn.init.constant_(module.gate.bias, gate_bias)
    return model
