"""Shared building blocks for the families: norm/activation factories, init schemes, probe discovery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from skipweb.models._registry import ProbeLayer

PROBED_TYPES = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def make_norm(kind: str, channels: int, dim: int = 2) -> nn.Module:
    """BatchNorm of the right dimension, or Identity when the family runs without normalization."""
    if kind == "none":
        return nn.Identity()
    if kind == "batch":
        return nn.BatchNorm2d(channels) if dim == 2 else nn.BatchNorm1d(channels)
    raise ValueError(f"unknown norm {kind!r}")


def make_act(kind: str) -> nn.Module:
    # Not in-place: in pre-activation blocks with norm="none" the activation's input is the block input,
    # which the skip path still needs.
    return {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[kind]()


def init_weights(model: nn.Module, scheme: str, act: str = "relu") -> None:
    """Initialise conv/linear weights: kaiming (He et al. 2015, fan_out), xavier, or small (N(0, 0.01)).

    With ``kaiming`` the classifier (the model's last Linear) keeps PyTorch's default Linear init, as in
    torchvision's ResNets and the reference CIFAR ResNet: fan-out Kaiming on a 64->10 head draws std 0.45
    and starts resnet-56 at a loss of 13 instead of ~2.3.

    ``small`` is the pre-BatchNorm regime in which deep plain nets' gradients vanish; it exists so that
    the textbook claim can be measured rather than asserted. Norm layers start at weight 1, bias 0.
    """
    for m in model.modules():
        if isinstance(m, PROBED_TYPES):
            if scheme == "kaiming":
                nonlinearity = "relu" if act == "relu" else "linear" if act == "sigmoid" else "tanh"
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity=nonlinearity)
            elif scheme == "xavier":
                nn.init.xavier_normal_(m.weight)
            elif scheme == "small":
                nn.init.normal_(m.weight, std=0.01)
            else:
                raise ValueError(f"unknown init {scheme!r}")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    heads = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if scheme == "kaiming" and heads:
        heads[-1].reset_parameters()


def zero_init_residual(model: nn.Module) -> None:
    """torchvision's ``zero_init_residual`` (Goyal et al. 2017, arXiv 1706.02677, Sec. 5.1): zero the last
    BatchNorm scale of every residual branch (the last layer where there is no norm there), so each block
    starts as the identity. Blocks opt in by defining ``zero_last()``; blocks without a skip are left alone."""
    for m in model.modules():
        if getattr(m, "skip_bridged", False) and hasattr(m, "zero_last"):
            m.zero_last()


def zero_(*modules: nn.Module) -> None:
    """Zero the weight of the first module that has one: a norm's scale, or else the layer itself."""
    for mod in modules:
        if getattr(mod, "weight", None) is not None:
            nn.init.zeros_(mod.weight)
            if getattr(mod, "bias", None) is not None and not isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                nn.init.zeros_(mod.bias)
            return


class ProbedModel(nn.Module):
    """Mixin for every skipweb model: lists its probe layers in depth order.

    Probe layers are the conv / transposed-conv / linear modules in registration order (families register
    modules in forward order). A layer is marked ``skip`` when it or one of its ancestors has a truthy
    ``skip_bridged`` attribute: blocks set it when a skip connection spans them, shortcut projections
    set it on themselves.
    """

    def probe_modules(self) -> list[tuple[ProbeLayer, nn.Module]]:
        out: list[tuple[ProbeLayer, nn.Module]] = []
        bridged: dict[str, bool] = {"": bool(getattr(self, "skip_bridged", False))}
        for name, module in self.named_modules():
            if name:
                parent = name.rsplit(".", 1)[0] if "." in name else ""
                bridged[name] = bridged.get(parent, False) or bool(getattr(module, "skip_bridged", False))
            if isinstance(module, PROBED_TYPES):
                params = sum(p.numel() for p in module.parameters(recurse=False))
                out.append((ProbeLayer(len(out), name, bridged[name], params), module))
        return out

    def probe_layers(self) -> list[ProbeLayer]:
        return [layer for layer, _ in self.probe_modules()]


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def zero_pad_shortcut(x: torch.Tensor, out_channels: int, stride: int) -> torch.Tensor:
    """Option A shortcut of He et al. 2015: subsample by stride and pad new channels with zeros (no params)."""
    if stride > 1:
        x = x[:, :, ::stride, ::stride]
    extra = out_channels - x.shape[1]
    if extra > 0:
        x = nn.functional.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))
    return x


MERGE_KINDS = ("add", "concat", "gate", "long", "none")


@dataclass(frozen=True)
class BlockLayer:
    """One block with a merge, in forward order: what :class:`skipweb.training.probes.BlockProbe` reports on.

    ``kind``: ``add`` (residual), ``concat`` (dense), ``gate`` (highway), ``long`` (U-Net encoder level),
    ``none`` (the same block of a no-skip twin: there is a branch but no skip path).
    """

    index: int
    name: str
    kind: str


class Fork(nn.Module):
    """Where a block's input splits into the skip path and the transformed branch: ``xs, xb = fork(x)``.

    Outside probe steps both are ``x`` itself and the fork costs nothing. While a probe is attached
    (``self.probe``, set by :class:`skipweb.training.probes.BlockProbe` for one step) the probe hands back two
    autograd aliases of ``x`` with gradient hooks, so backward delivers ``dL/dx`` in two parts: what
    came back through the skip and what came back through the branch. They sum to ``dL/dx``.
    No parameters or buffers: adding a fork changes no state dict.
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        if kind not in MERGE_KINDS:
            raise ValueError(f"unknown merge kind {kind!r}")
        self.kind = kind
        self.index = -1
        self.probe: Any = None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.probe is None:
            return x, x
        return self.probe.fork(self.index, x)

    def gate(self, t: torch.Tensor) -> None:
        """Highway blocks report their transform gate ``T`` here (its batch mean is recorded)."""
        if self.probe is not None:
            self.probe.gate(self.index, t)
