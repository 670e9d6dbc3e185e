"""Static facts about a model: parameters, FLOPs per sample, probe layers, a short layer summary."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from skipweb.models import count_params, get_info, get_model


def count_flops(model: nn.Module, in_channels: int, image_size: int) -> int:
    """FLOPs of one forward pass for one sample, by torch's FLOP counter (a multiply-add counts 2)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x = torch.zeros(1, in_channels, image_size, image_size, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    model.train(was_training)
    return int(counter.get_total_flops())


def describe(
    family: str, depth: int, *, num_classes: int = 10, in_channels: int = 3, image_size: int = 32, **options
) -> dict:
    info = get_info(family)
    opts = info.resolve(depth, options)
    model = get_model(family, depth=depth, num_classes=num_classes, in_channels=in_channels, image_size=image_size, **opts)
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
