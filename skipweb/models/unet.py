"""U-Net with its long skips as an option: concatenate (original), add, or none.

Ronneberger, Fischer, Brox, "U-Net: Convolutional Networks for Biomedical Image Segmentation",
MICCAI 2015, https://arxiv.org/abs/1505.04597. Like the widely used milesial/Pytorch-UNet, the 3x3
convs are padded (output size = input size) and each is followed by a norm; with width 64, depth 4,
transposed-conv upsampling and concatenation this is exactly that model (31,037,633 parameters for
3 input channels and 1 class).

Depth is the number of 2x down steps, so the image size must be divisible by 2**depth.

Skip modes, all built by the same class:
- ``concat``: the decoder conv sees [encoder map, upsampled map] (2c channels), as in the paper.
- ``add``: the decoder conv sees encoder map + upsampled map (c channels). The upsampler already halves
  the channels to match the encoder map, so adding needs no projection and has no parameters: ``add``
  has exactly the parameters of ``none``.
- ``none``: a plain encoder-decoder; the decoder conv sees only the upsampled map.

Up modes: ``transpose`` is a 2x2 stride-2 transposed conv halving the channels; ``bilinear`` is
bilinear upsampling followed by a 1x1 conv halving the channels (the paper's "up-convolution" is
upsampling then a channel-halving conv). This differs from milesial's bilinear mode, which instead
halves the bottleneck's width; we keep one channel plan so that only the upsampler changes.
"""

from __future__ import annotations

import torch
from torch import nn

from skipweb.errors import ModelConfigError
from skipweb.models._common import Fork, ProbedModel, init_weights, make_act, make_norm
from skipweb.models.families import unet_image_error


class _DoubleConv(nn.Sequential):
    """(3x3 conv -> norm -> act) x 2, padded so the map keeps its size."""

    def __init__(self, in_channels: int, out_channels: int, *, norm: str, act: str) -> None:
        bias = norm == "none"  # a norm right after the conv would absorb the bias
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias),
            make_norm(norm, out_channels),
            make_act(act),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=bias),
            make_norm(norm, out_channels),
            make_act(act),
        )


class _Down(nn.Sequential):
    """2x2 max pool then a double conv: one encoder step."""

    def __init__(self, in_channels: int, out_channels: int, *, norm: str, act: str) -> None:
        super().__init__(nn.MaxPool2d(2), _DoubleConv(in_channels, out_channels, norm=norm, act=act))


class _Up(nn.Module):
    """One decoder step: upsample to half the channels, merge the encoder's map (the long skip), conv.

    ``forward`` is the one place where the long skip enters the decoder.
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, skip: str, up: str, norm: str, act: str
    ) -> None:
        super().__init__()
        if up == "transpose":
            self.up: nn.Module = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        else:
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(in_channels, out_channels, 1),
            )
        self.skip = skip
        merged = 2 * out_channels if skip == "concat" else out_channels
        self.conv = _DoubleConv(merged, out_channels, norm=norm, act=act)

    def forward(self, x: torch.Tensor, encoded: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        if self.skip == "concat":
            x = torch.cat([encoded, x], dim=1)
        elif self.skip == "add":
            x = x + encoded
        return self.conv(x)


class UNet(ProbedModel):
    """Encoder of ``depth`` down steps with widths ``width * 2**i``, mirrored decoder, 1x1 output conv.

    Args:
        depth: number of down (and up) steps.
        width: channels of the first level; each level down doubles them.
        skip: "concat", "add" or "none" (see the module docstring).
        up: "transpose" or "bilinear".
    """

    def __init__(
        self,
        *,
        depth: int,
        width: int,
        in_channels: int,
        num_classes: int,
        skip: str,
        up: str,
        norm: str,
        act: str,
    ) -> None:
        super().__init__()
        self.depth = depth
        widths = [width * 2**i for i in range(depth + 1)]
        self.inc = _DoubleConv(in_channels, widths[0], norm=norm, act=act)
        self.downs = nn.ModuleList(_Down(widths[i], widths[i + 1], norm=norm, act=act) for i in range(depth))
        self.ups = nn.ModuleList(
            _Up(widths[i + 1], widths[i], skip=skip, up=up, norm=norm, act=act)
            for i in reversed(range(depth))
        )
        self.outc = nn.Conv2d(widths[0], num_classes, 1)
        # one fork per encoder level with a long skip: its map goes down the encoder (the branch) and
        # across to the decoder (the skip path)
        self.levels = nn.ModuleList(Fork("long" if skip != "none" else "none") for _ in range(depth))
        if skip != "none":
            # A layer is bridged when some long skip lets the gradient bypass it: every step below the
            # top level and every upsampler. Only the first encoder conv, the last decoder conv and the
            # output conv sit on every path.
            for module in [*self.downs, *(u.up for u in self.ups), *(u.conv for u in self.ups[:-1])]:
                module.skip_bridged = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        step = 2**self.depth
        if x.shape[-2] % step or x.shape[-1] % step:
            raise ValueError(f"U-Net of depth {self.depth} needs height and width divisible by {step}")
        x, skips = self.inc(x), []
        for fork, down in zip(self.levels, self.downs, strict=True):
            xs, xb = fork(x)
            skips.append(xs)
            x = down(xb)
        for up in self.ups:  # x is the bottleneck, which has no skip of its own
            x = up(x, skips.pop())
        return self.outc(x)


def unet(
    *,
    depth: int,
    num_classes: int,
    in_channels: int,
    image_size: int,
    width: int,
    skip: str,
    up: str,
    norm: str,
    act: str,
    init: str,
) -> UNet:
    error = unet_image_error(depth, image_size)  # RunSpec checks it too, before anything is queued
    if error:
        raise ModelConfigError(error)
    model = UNet(
        depth=depth,
        width=width,
        in_channels=in_channels,
        num_classes=num_classes,
        skip=skip,
        up=up,
        norm=norm,
        act=act,
    )
    init_weights(model, init, act)
    return model
