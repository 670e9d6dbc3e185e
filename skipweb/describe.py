"""Static facts about a model: parameters, FLOPs per sample, probe layers, a short layer summary."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd

from skipweb.models import count_params, get_info, get_model


def count_flops(model: nn.Module, in_channels: int, image_size: int) -> int:
    """FLOPs of one forward pass for one sample (a multiply-add counts 2): its convolutions, transposed ones
    too, and linear layers, by forward hooks. These are the operations torch's FLOP counter
    (torch.utils.flop_counter) counts in the zoo's models, and the totals equal its for every family
    (tests/models/test_models.py); its first use costs 1.2 s (it imports torch._dynamo), which the Launch
    page's first grid preview paid."""
    total = 0

    def count(layer: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(layer, nn.Linear):
            positions = out.numel() // out.shape[-1]
        else:  # a convolution: each weight once per output position, or per input position when transposed
            positions = (
                (inputs[0].numel() // inputs[0].shape[1])
                if layer.transposed
                else (out.numel() // out.shape[1])
            )
        total += 2 * positions * layer.weight.numel()

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.Linear | _ConvNd)]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            model(torch.zeros(1, in_channels, image_size, image_size, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return total


def describe(
    family: str, depth: int, *, num_classes: int = 10, in_channels: int = 3, image_size: int = 32, **options
) -> dict:
    info = get_info(family)
    opts = info.resolve(depth, options)
    model = get_model(
        family, depth=depth, num_classes=num_classes, in_channels=in_channels, image_size=image_size, **opts
    )
    probes = model.probe_layers()
    summary = [
        {"name": name, "type": type(child).__name__, "params": count_params(child)}
        for name, child in model.named_children()
    ]
    return {
        "family": family,
        "depth": depth,
        "task": info.task,
        "options": opts,
        "input": [in_channels, image_size, image_size],
        "num_classes": num_classes,
        "params": count_params(model),
        "flops": count_flops(model, in_channels, image_size),
        "probe_layers": len(probes),
        "skip_layers": sum(p.skip for p in probes),
        "summary": summary,
    }
