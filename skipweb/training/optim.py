"""Optimizers and learning-rate schedules, all stepped once per optimizer step."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR

from skipweb.spec import RunSpec


def build_optimizer(model: nn.Module, spec: RunSpec) -> torch.optim.Optimizer:
    """SGD or AdamW; on a GPU the fused kernels (one or two launches a step for every parameter, instead of
    a handful of multi-tensor ones): the step of a small net on a GPU is bound by kernel launches."""
    fused = next(model.parameters()).is_cuda
    if spec.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=spec.lr,
            momentum=spec.momentum,
            nesterov=spec.nesterov and spec.momentum > 0,
            weight_decay=spec.weight_decay,
            fused=fused or None,
        )
    return torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay, fused=fused or None)


def build_schedule(opt: torch.optim.Optimizer, spec: RunSpec, steps_per_epoch: int) -> LRScheduler:
    """multistep (He et al.: /10 at 50% and 75% of training), cosine, one-cycle or constant; linear warm-up."""
    total = max(1, spec.epochs * steps_per_epoch)
    if spec.schedule == "onecycle":
        return OneCycleLR(opt, max_lr=spec.lr, total_steps=total)
    warmup = int(spec.warmup_epochs * steps_per_epoch)
    milestones = [int(m * total) for m in spec.milestones]

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if spec.schedule == "multistep":
            return spec.gamma ** sum(step >= m for m in milestones)
        if spec.schedule == "cosine":
            t = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
        return 1.0

    return LambdaLR(opt, factor)
