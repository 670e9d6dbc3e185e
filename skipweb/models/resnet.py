"""CIFAR ResNets and their plain twins: one network class, with or without the skip connections.

- He et al. 2015, *Deep Residual Learning for Image Recognition*, https://arxiv.org/abs/1512.03385
  (Sec. 4.2: 3 stages of 16/32/64 channels, 6n+2 layers, option A shortcuts, and the plain nets).
- He et al. 2016, *Identity Mappings in Deep Residual Networks*, https://arxiv.org/abs/1603.05027
  (pre-activation blocks; the CIFAR bottleneck ResNet-164 and -1001).

``plain`` is not a second network: it is :class:`CifarResNet` with ``skip=False``, so that a comparison
between the two changes exactly one thing.
"""

from __future__ import annotations

import torch
from torch import nn

from skipweb.models._common import (
    Fork,
    ProbedModel,
    init_weights,
    make_act,
    make_norm,
    zero_,
    zero_pad_shortcut,
)
from skipweb.models._common import (
    zero_init_residual as zero_init_residual_,
)
from skipweb.models.families import BLOCK_LAYERS


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=bias)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=bias)


class ZeroPadShortcut(nn.Module):
    """Option A: subsample and zero-pad the new channels; no parameters (the paper's CIFAR choice)."""

    def __init__(self, out_planes: int, stride: int) -> None:
        super().__init__()
        self.out_planes, self.stride = out_planes, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return zero_pad_shortcut(x, self.out_planes, self.stride)


def make_shortcut(kind: str, in_planes: int, out_planes: int, stride: int, norm: str) -> nn.Module:
    """Identity when shapes match; otherwise option A (zero-pad) or option B (1x1 conv + norm projection)."""
    if stride == 1 and in_planes == out_planes:
        return nn.Identity()
    if kind == "A":
        return ZeroPadShortcut(out_planes, stride)
    proj = nn.Sequential(conv1x1(in_planes, out_planes, stride), make_norm(norm, out_planes))
    proj.skip_bridged = True  # a projection is the skip path itself
    return proj


class BasicBlock(nn.Module):
    """Two 3x3 convs, post-activation (He et al. 2015): ``act(F(x) + shortcut(x))``, or ``act(F(x))``."""

    expansion = 1
    layers = 2  # weight layers on the main path, for the depth rule
    preact = False

    def __init__(
        self, in_planes: int, planes: int, stride: int, *, shortcut: str, skip: bool, norm: str, act: str
    ):
        super().__init__()
        bias = norm == "none"  # a bias is redundant in front of BatchNorm, not without it
        self.conv1 = conv3x3(in_planes, planes, stride, bias)
        self.bn1 = make_norm(norm, planes)
        self.act1 = make_act(act)
        self.conv2 = conv3x3(planes, planes, 1, bias)
        self.bn2 = make_norm(norm, planes)
        # With skip=False no shortcut is built at all: an unused projection would be dead parameters.
        self.shortcut = make_shortcut(shortcut, in_planes, planes, stride, norm) if skip else None
        self.act2 = make_act(act)
        self.skip_bridged = skip
        self.fork = Fork("add" if skip else "none")

    def zero_last(self) -> None:
        zero_(self.bn2, self.conv2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs, xb = self.fork(x)
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(xb)))))
        if self.shortcut is not None:
            out = out + self.shortcut(xs)
        return self.act2(out)


class PreActBlock(nn.Module):
    """Pre-activation basic block (He et al. 2016): ``x + conv(act(norm(conv(act(norm(x))))))``.

    A projection shortcut takes the pre-activated input (as in the authors' code); the identity and
    option A shortcuts take ``x`` itself, so the skip path stays free of nonlinearities.
    """

    expansion = 1
    layers = 2
    preact = True

    def __init__(
        self, in_planes: int, planes: int, stride: int, *, shortcut: str, skip: bool, norm: str, act: str
    ):
        super().__init__()
        bias = norm == "none"
        self.bn1, self.act1 = make_norm(norm, in_planes), make_act(act)
        self.conv1 = conv3x3(in_planes, planes, stride, bias)
        self.bn2, self.act2 = make_norm(norm, planes), make_act(act)
        self.conv2 = conv3x3(planes, planes, 1, bias)
        self.shortcut = make_shortcut(shortcut, in_planes, planes, stride, norm) if skip else None
        self.projects = isinstance(self.shortcut, nn.Sequential)  # only projections are Sequential
        self.skip_bridged = skip
        self.fork = Fork("add" if skip else "none")

    def zero_last(self) -> None:
        zero_(self.conv2)

    def residual(self, pre: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.act2(self.bn2(self.conv1(pre))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A projection reads the pre-activated input, so the fork sits after act1 for it (the shared
        # norm+act then counts as skip path too); identity and option A shortcuts fork x itself.
        if self.projects:
            xs, xb = self.fork(self.act1(self.bn1(x)))
            pre = xb
        else:
            xs, xb = self.fork(x)
            pre = self.act1(self.bn1(xb))
        out = self.residual(pre)
        if self.shortcut is None:
            return out
        return out + self.shortcut(xs)


class PreActBottleneck(PreActBlock):
    """Pre-activation bottleneck of the CIFAR ResNet-164/1001 (He et al. 2016): 1x1, 3x3 (strided), 1x1 x4."""

    expansion = 4
    layers = 3

    def __init__(
        self, in_planes: int, planes: int, stride: int, *, shortcut: str, skip: bool, norm: str, act: str
    ):
        nn.Module.__init__(self)
        bias, out_planes = norm == "none", planes * self.expansion
        self.bn1, self.act1 = make_norm(norm, in_planes), make_act(act)
        self.conv1 = conv1x1(in_planes, planes, 1, bias)
        self.bn2, self.act2 = make_norm(norm, planes), make_act(act)
        self.conv2 = conv3x3(planes, planes, stride, bias)
        self.bn3, self.act3 = make_norm(norm, planes), make_act(act)
        self.conv3 = conv1x1(planes, out_planes, 1, bias)
        self.shortcut = make_shortcut(shortcut, in_planes, out_planes, stride, norm) if skip else None
        self.projects = isinstance(self.shortcut, nn.Sequential)
        self.skip_bridged = skip
        self.fork = Fork("add" if skip else "none")

    def zero_last(self) -> None:
        zero_(self.conv3)

    def residual(self, pre: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.act2(self.bn2(self.conv1(pre))))
        return self.conv3(self.act3(self.bn3(out)))


BLOCKS: dict[str, type[nn.Module]] = {
    "basic": BasicBlock,
    "preact": PreActBlock,
    "bottleneck": PreActBottleneck,
}
# the registry's depth rule (skipweb.models.families) counts the same weight layers per block
assert {name: b.layers for name, b in BLOCKS.items()} == BLOCK_LAYERS


class CifarResNet(ProbedModel):
    """Stem conv -> 3 stages (width, 2*width, 4*width channels; stride 2 at stages 2 and 3) -> pool -> fc.

    ``block`` is any block class taking ``(in_planes, planes, stride, *, shortcut, skip, norm, act)``;
    highway networks reuse this trunk with their own block. Pre-activation blocks get a bare conv stem
    and a final norm+act before pooling (He et al. 2016); post-activation ones a conv+norm+act stem.
    """

    def __init__(
        self,
        block: type[nn.Module],
        blocks_per_stage: int,
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        width: int = 16,
        shortcut: str = "A",
        skip: bool = True,
        norm: str = "batch",
        act: str = "relu",
    ) -> None:
        super().__init__()
        self.skip = skip
        preact = getattr(block, "preact", False)
        stem = [conv3x3(in_channels, width, bias=norm == "none")]
        self.stem = (
            nn.Sequential(*stem) if preact else nn.Sequential(*stem, make_norm(norm, width), make_act(act))
        )
        in_planes = width
        for i, planes in enumerate((width, 2 * width, 4 * width), start=1):
            blocks = []
            for j in range(blocks_per_stage):
                stride = 2 if i > 1 and j == 0 else 1
                blocks.append(
                    block(in_planes, planes, stride, shortcut=shortcut, skip=skip, norm=norm, act=act)
                )
                in_planes = planes * block.expansion
            self.add_module(f"layer{i}", nn.Sequential(*blocks))
        self.final = nn.Sequential(make_norm(norm, in_planes), make_act(act)) if preact else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.final(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.forward_features(x)), 1))


def _cifar_resnet(*, depth: int, block: str, init: str, **kwargs) -> CifarResNet:
    """Build and initialise; ``kwargs`` are :class:`CifarResNet`'s keyword arguments."""
    block_cls = BLOCKS[block]
    model = CifarResNet(block_cls, (depth - 2) // (3 * block_cls.layers), **kwargs)
    init_weights(model, init, kwargs["act"])
    return model


def resnet(*, depth: int, image_size: int, no_skip: bool, zero_init_residual: bool = False, **opts) -> CifarResNet:
    """CIFAR ResNet (He et al. 2015, https://arxiv.org/abs/1512.03385; preact/bottleneck: arXiv 1603.05027).

    Args:
        depth: weight layers; 6n+2 for basic/preact blocks, 9n+2 for bottleneck blocks.
        image_size: unused; global average pooling makes the net size-agnostic.
        no_skip: drop every shortcut, which turns the net into its plain twin.
        opts: num_classes, in_channels, block, shortcut ("A" zero-pad or "B" projection), width, norm,
            act, init.
        zero_init_residual: start every residual branch at zero (torchvision's option; Goyal et al. 2017).
    """
    model = _cifar_resnet(depth=depth, skip=not no_skip, **opts)
    if zero_init_residual:
        zero_init_residual_(model)
    return model


def plain(*, depth: int, image_size: int, **opts) -> CifarResNet:
    """The plain CIFAR nets of He et al. 2015 (Sec. 4.2): the basic-block ResNet with no shortcuts."""
    return _cifar_resnet(depth=depth, block="basic", skip=False, **opts)
