"""Per-layer gradient probes: gradient norm, weight norm and update/weight ratio of every probe layer.

Everything is computed with ``torch._foreach_*`` kernels over the list of probe weights and stays on the
device; the trainer fetches the results together with the step losses in ONE host sync per probe step.
A per-layer ``.item()`` would stall the GPU once per layer (57 times for a resnet-56).
"""

from __future__ import annotations

import torch
from torch import nn

from skipweb.models import ProbeLayer


class GradProbe:
    """Probe the weight tensors of a model's probe layers (biases excluded: the weight carries the signal)."""

    def __init__(self, model: nn.Module):
        pairs = model.probe_modules()  # type: ignore[operator]
        self.layers: list[ProbeLayer] = [layer for layer, _ in pairs]
        self.weights: list[torch.Tensor] = [m.weight for _, m in pairs]
        self._before: list[torch.Tensor] | None = None
        self._grad: torch.Tensor | None = None

    def before_step(self) -> None:
        """Call after backward, before optimizer.step(): measure gradients and keep the weights."""
        with torch.no_grad():
            grads = [w.grad if w.grad is not None else torch.zeros_like(w) for w in self.weights]
            self._grad = torch.stack(torch._foreach_norm(grads)).float()
            self._before = [w.detach().clone() for w in self.weights]

    def after_step(self) -> torch.Tensor:
        """Call after optimizer.step(): returns a (3, L) device tensor: grad norm, weight norm, update ratio."""
        assert self._before is not None and self._grad is not None, "before_step() was not called"
        with torch.no_grad():
            weights = [w.detach() for w in self.weights]
            delta = torch._foreach_sub(weights, self._before)
            w_norm = torch.stack(torch._foreach_norm(weights)).float()
            d_norm = torch.stack(torch._foreach_norm(delta)).float()
            out = torch.stack([self._grad, w_norm, d_norm / w_norm.clamp_min(1e-12)])
        self._before = self._grad = None
        return out
