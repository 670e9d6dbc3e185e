"""torchvision's ImageNet networks, unchanged, as reference baselines.

- ResNet-18/34/50: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016,
  https://arxiv.org/abs/1512.03385
- DenseNet-121: Huang et al., "Densely Connected Convolutional Networks", CVPR 2017,
  https://arxiv.org/abs/1608.06993

The architectures are torchvision's own (same parameter counts); only the classifier is resized for
``num_classes`` and the first conv for ``in_channels``. They downsample by 32 and densenet121's last
transition fails below that, so inputs smaller than 32x32 are upsampled bilinearly to 32 in ``forward``
rather than altering the reference architecture.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn
from torch.nn import functional as F
from torchvision.models.densenet import _DenseLayer
from torchvision.models.resnet import BasicBlock, Bottleneck

from skipweb.errors import ModelConfigError
from skipweb.models._common import ProbedModel
from skipweb.models.families import TORCHVISION_ARCHS as ARCHS

MIN_SIZE = 32  # the networks' total stride


def _adapt_stem(net: nn.Module, in_channels: int, pretrained: bool) -> None:
    """Swap the first conv for one with ``in_channels`` inputs.

    Pretrained RGB filters are kept the way timm adapts them: summed for one channel, otherwise tiled
    over the new channels and rescaled by 3 / in_channels so activations keep their scale.
    """
    parent, name = (net.features, "conv0") if hasattr(net, "features") else (net, "conv1")
    old: nn.Conv2d = getattr(parent, name)
    new = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False)
    if pretrained:
        with torch.no_grad():
            if in_channels == 1:
                new.weight.copy_(old.weight.sum(dim=1, keepdim=True))
            else:
                tiled = old.weight.repeat(1, -(-in_channels // 3), 1, 1)[:, :in_channels]
                new.weight.copy_(tiled * (3 / in_channels))
    else:
        nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")  # as torchvision does
    setattr(parent, name, new)  # same name, so the stem stays first in registration (forward) order


def _resize_head(net: nn.Module, num_classes: int) -> None:
    name = "classifier" if hasattr(net, "classifier") else "fc"
    old: nn.Linear = getattr(net, name)
    if old.out_features != num_classes:
        setattr(net, name, nn.Linear(old.in_features, num_classes))


class TorchvisionNet(ProbedModel):
    """A torchvision classifier with skipweb's probe interface and a minimum input size.

    Residual blocks (their convs and downsample projections) and dense layers are marked bridged:
    their skip or concatenation carries the input past them.
    """

    def __init__(self, net: nn.Module, arch: str) -> None:
        super().__init__()
        self.arch = arch
        self.net = net
        for module in net.modules():
            if isinstance(module, (BasicBlock, Bottleneck, _DenseLayer)):
                module.skip_bridged = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h < MIN_SIZE or w < MIN_SIZE:
            x = F.interpolate(
                x, size=(max(h, MIN_SIZE), max(w, MIN_SIZE)), mode="bilinear", align_corners=False
            )
        return self.net(x)


def torchvision_net(
    *, depth: int, num_classes: int, in_channels: int, image_size: int, pretrained: bool
) -> TorchvisionNet:
    del image_size  # small inputs are upsampled in forward
    arch = ARCHS[depth]
    constructor = getattr(torchvision.models, arch)
    if pretrained:
        try:
            net = constructor(weights="DEFAULT", progress=False)
        except OSError as err:  # URLError, timeouts and refused connections are all OSErrors
            raise ModelConfigError(
                f"could not download torchvision weights for {arch} (no network?); use pretrained=False"
            ) from err
        _resize_head(net, num_classes)  # a new, randomly initialised head when num_classes != 1000
    else:
        net = constructor(weights=None, num_classes=num_classes)
    if in_channels != 3:
        _adapt_stem(net, in_channels, pretrained)
    return TorchvisionNet(net, arch)
