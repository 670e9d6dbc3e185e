"""DenseNet for CIFAR-sized images, and its no-concatenation twin.

Huang, Liu, van der Maaten, Weinberger, "Densely Connected Convolutional Networks", CVPR 2017,
https://arxiv.org/abs/1608.06993 — the CIFAR variant of Section 3: a 3x3 stem, three dense blocks
joined by transitions, then norm-act-global pool-linear. No dropout (the paper uses it only without
data augmentation).

Depth counts weight layers as the paper does: stem + block convs + 2 transitions + classifier.
Without bottlenecks each dense layer is one 3x3 conv, so L = 3n + 4; DenseNet-BC layers are a 1x1
bottleneck (4k channels) plus a 3x3 conv, so L = 6n + 4, and transitions halve the channels.

``no_skip`` builds the twin with the dense connections removed: each layer sees only its
predecessor's k feature maps instead of the concatenation of all earlier ones. Layer inputs are then
k channels rather than k0 + (i-1)k, so the twin necessarily has fewer parameters; that is inherent in
removing concatenation, not a second design choice.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from skipweb.models._common import Fork, ProbedModel, init_weights, make_act, make_norm


def _preact(norm: str, act: str, channels: int) -> list[nn.Module]:
    """Norm then activation, the front half of DenseNet's composite function H = BN-ReLU-Conv."""
    return [make_norm(norm, channels), make_act(act)]


class _DenseLayer(nn.Module):
    """H_l (optionally with the BC bottleneck) followed by the dense connection.

    ``forward`` is the one place where a layer's k new feature maps are concatenated to its input; a
    probe that hooks this module sees the concatenated output.
    """

    def __init__(self, in_channels: int, growth: int, *, bc: bool, concat: bool, norm: str, act: str) -> None:
        super().__init__()
        bias = norm == "none"  # a conv followed (eventually) by a norm would have its bias absorbed
        layers: list[nn.Module] = []
        width = in_channels
        if bc:
            # The 1x1 bottleneck bounds the 3x3 conv's input at 4k channels however many precede it.
            layers += [*_preact(norm, act, width), nn.Conv2d(width, 4 * growth, 1, bias=bias)]
            width = 4 * growth
        layers += [*_preact(norm, act, width), nn.Conv2d(width, growth, 3, padding=1, bias=bias)]
        self.branch = nn.Sequential(*layers)
        self.concat = concat
        self.out_channels = in_channels + growth if concat else growth
        # The concatenation carries the input past this layer's convs unchanged.
        self.skip_bridged = concat
        self.fork = Fork("concat" if concat else "none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs, xb = self.fork(x)
        new = self.branch(xb)
        return torch.cat([xs, new], dim=1) if self.concat else new


class _Transition(nn.Sequential):
    """Norm-act-1x1 conv-2x2 average pool between dense blocks (compression happens in the conv)."""

    def __init__(self, in_channels: int, out_channels: int, *, norm: str, act: str) -> None:
        super().__init__(
            *_preact(norm, act, in_channels),
            nn.Conv2d(in_channels, out_channels, 1, bias=norm == "none"),
            nn.AvgPool2d(2),
        )


class DenseNet(ProbedModel):
    """CIFAR DenseNet / DenseNet-BC with three dense blocks of ``layers_per_block`` layers each.

    Args:
        layers_per_block: dense layers in each of the three blocks (n).
        growth: growth rate k, the feature maps each layer adds.
        bc: 1x1 bottlenecks in each layer and 0.5 compression in transitions (DenseNet-BC).
        concat: the dense connections; False gives the plain chain (``no_skip``).
    """

    def __init__(
        self,
        *,
        layers_per_block: int,
        growth: int,
        bc: bool,
        concat: bool,
        num_classes: int,
        in_channels: int,
        norm: str,
        act: str,
    ) -> None:
        super().__init__()
        channels = 2 * growth if bc else 16  # the paper's stem widths
        self.stem = nn.Conv2d(in_channels, channels, 3, padding=1, bias=norm == "none")
        stages: OrderedDict[str, nn.Module] = OrderedDict()
        for b in range(1, 4):
            layers = []
            for _ in range(layers_per_block):
                layer = _DenseLayer(channels, growth, bc=bc, concat=concat, norm=norm, act=act)
                layers.append(layer)
                channels = layer.out_channels
            stages[f"dense{b}"] = nn.Sequential(*layers)
            if b < 3:
                out = channels // 2 if bc else channels
                stages[f"trans{b}"] = _Transition(channels, out, norm=norm, act=act)
                channels = out
        self.features = nn.Sequential(stages)
        self.head = nn.Sequential(
            *_preact(norm, act, channels),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(channels, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.stem(x)))




def _layers_per_block(depth: int, bc: bool) -> int:
    return (depth - 4) // (6 if bc else 3)


def densenet(
    *,
    depth: int,
    num_classes: int,
    in_channels: int,
    image_size: int,
    growth: int,
    bc: bool,
    no_skip: bool,
    norm: str,
    act: str,
    init: str,
) -> DenseNet:
    del image_size  # global pooling makes the network size-agnostic
    model = DenseNet(
        layers_per_block=_layers_per_block(depth, bc),
        growth=growth,
        bc=bc,
        concat=not no_skip,
        num_classes=num_classes,
        in_channels=in_channels,
        norm=norm,
        act=act,
    )
    init_weights(model, init, act)
    return model
