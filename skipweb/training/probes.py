"""Probes: per-layer gradient/weight/update norms (GradProbe) and per-block skip/branch gradients and
activation statistics (BlockProbe).

Everything stays on the device (GradProbe uses ``torch._foreach_*`` kernels over the probe weights); the
trainer fetches the results together with the step losses in ONE host sync per probe step. A per-layer
``.item()`` would stall the GPU once per layer (57 times for a resnet-56).
"""

from __future__ import annotations

import torch
from torch import nn

from skipweb.models import ProbeLayer
from skipweb.models._common import BlockLayer, Fork


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
            self._before = torch._foreach_mul([w.detach() for w in self.weights], 1.0)  # copies, in one launch

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


from skipweb.facts import BLOCK_STATS  # noqa: E402  (the row order of collect())


class BlockProbe:
    """Per-block probes on the model's :class:`~skipweb.models._common.Fork` points, one step at a time.

    ``arm()`` before the forward pass of a probe step; ``collect()`` after its backward returns a
    ``(6, n_blocks)`` device tensor, rows in :data:`BLOCK_STATS` order:

    - ``skip_grad`` / ``branch_grad``: norm of the part of ``dL/dx`` (``x`` the block input) that came
      back through the skip path / through the transformed branch. The two parts sum to ``dL/dx``.
      NaN ``skip_grad`` where the block has no skip (the no-skip twins).
    - ``act_mean``, ``act_std``: of the activation entering the block (for a U-Net level: the encoder
      map its long skip carries).
    - ``act_dead``: fraction of its channels (units, for an MLP) that are <= 0 for every example and
      position of the batch: dead ReLU units, or units the next ReLU kills for the whole batch.
    - ``gate``: highway blocks' mean transform gate T (0 = carry everything); NaN elsewhere.

    All values stay on the device until the trainer's one sync per probe step. ``keep=True`` also keeps
    the raw gradient tensors (``self.grads[i] = (skip, branch)``), for tests.

    Two ways to take the gradient rows. ``arm()``: gradient hooks on two aliases of ``x`` (eager only:
    torch.compile does not trace hooks on intermediate tensors). ``arm(traced=True)``, for a compiled
    step: the fork hands back ``x + zs`` and ``x + zb``, with ``zs``/``zb`` zero tensors that are leaves
    of the graph, so backward leaves ``dL/dxs`` and ``dL/dxb`` in their ``.grad`` (adding zero changes no
    value, and the identity passes the gradient unchanged). It needs each fork's input shape, learnt on an
    eager probe step first (:meth:`can_trace`); the statistics rows are traced into the graph.
    """

    def __init__(self, model: nn.Module, keep: bool = False):
        forks = [(name, m) for name, m in model.named_modules() if isinstance(m, Fork)]
        self.forks = [m for _, m in forks]
        for i, fork in enumerate(self.forks):
            fork.index = i
        self.layers = [BlockLayer(i, _block_name(name), fork.kind) for i, (name, fork) in enumerate(forks)]
        self.keep = keep
        self.grads: dict[int, list[torch.Tensor | None]] = {}
        self._slots: list[list[torch.Tensor | None]] = []
        self.traced = False
        self._inputs: dict[int, tuple[torch.Tensor, torch.device]] = {}  # (meta twin, device): eager steps
        self._zeros: list[tuple[torch.Tensor, torch.Tensor]] = []

    def can_trace(self) -> bool:
        """Whether the zero leaves exist: made (eagerly, outside any compiled function) once an eager
        probe step has shown every fork's input shape; False until then."""
        if not self._zeros and self._inputs and len(self._inputs) == len(self.forks):
            self._zeros = [  # shape, dtype and strides (channels-last stays channels-last) of the input
                (torch.zeros_like(meta, device=device, requires_grad=True),
                 torch.zeros_like(meta, device=device, requires_grad=True))
                for meta, device in (self._inputs[i] for i in range(len(self.forks)))
            ]  # fmt: skip
        return bool(self._zeros)

    def arm(self, traced: bool = False) -> None:
        """Attach to the forks for one step, before its forward pass. ``traced=True`` (after
        :meth:`can_trace` said yes): call it inside the compiled function, so that the slots it resets are
        part of what is traced."""
        self._slots = [[None] * len(BLOCK_STATS) for _ in self.forks]
        self.grads = {}
        self.traced = traced
        for fork in self.forks:
            fork.probe = self

    def disarm(self) -> None:
        for fork in self.forks:
            fork.probe = None

    # ---- called by the forks during forward / backward -----------------------------------------------
    def fork(self, i: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        slot = self._slots[i]
        with torch.no_grad():
            a = x.detach()
            std, mean = torch.std_mean(a.float())
            reduce = [d for d in range(a.ndim) if d != 1]
            dead = (a.amax(dim=reduce) <= 0).float().mean()
            slot[2:5] = [mean, std, dead]
        if not (x.requires_grad and torch.is_grad_enabled()):
            return x, x
        if self.traced:
            zs, zb = self._zeros[i]
            return (x if self.forks[i].kind == "none" else x + zs), x + zb
        self._inputs[i] = (torch.empty_like(a, device="meta"), a.device)
        xb = x.view_as(x)
        xb.register_hook(lambda g: self._grad(i, 1, g))
        if self.forks[i].kind == "none":
            return x, xb  # no skip path reads xs
        xs = x.view_as(x)
        xs.register_hook(lambda g: self._grad(i, 0, g))
        return xs, xb

    def gate(self, i: int, t: torch.Tensor) -> None:
        self._slots[i][5] = t.detach().float().mean()

    def _grad(self, i: int, which: int, g: torch.Tensor) -> None:
        self._slots[i][which] = torch.linalg.vector_norm(g.detach().float())
        if self.keep:
            self.grads.setdefault(i, [None, None])[which] = g.detach().clone()

    # ---- after backward -------------------------------------------------------------------------------
    def collect(self, scale: torch.Tensor | None = None) -> torch.Tensor:
        """Disarm and return the ``(6, n_blocks)`` statistics; ``scale``: the GradScaler's loss scale
        (a device tensor, so no sync), divided out of the gradient rows."""
        self.disarm()
        if self.traced:
            self._collect_traced()
        nan = None
        cols = []
        for slot in self._slots:
            if any(v is None for v in slot):
                if nan is None:
                    ref = next((v for s in self._slots for v in s if v is not None), None)
                    nan = torch.tensor(float("nan"), device=ref.device if ref is not None else "cpu")
                slot = [nan if v is None else v for v in slot]
            cols.append(torch.stack(slot))
        self._slots = []
        if not cols:
            return torch.empty(len(BLOCK_STATS), 0)
        out = torch.stack(cols, dim=1)
        if scale is not None:
            out[:2] = out[:2] / scale.float()
        return out


    def _collect_traced(self) -> None:
        """The gradient rows of a traced step: the norms of the zero leaves' gradients (one multi-tensor
        launch), taken before the next replay of a CUDA graph reuses their memory."""
        grads = [z.grad for pair in self._zeros for z in pair]
        have = [i for i, g in enumerate(grads) if g is not None]
        norms = torch._foreach_norm([grads[i] for i in have], 2, dtype=torch.float32) if have else []
        for i, norm in zip(have, norms, strict=True):
            self._slots[i // 2][i % 2] = norm
            if self.keep:
                self.grads.setdefault(i // 2, [None, None])[i % 2] = grads[i].detach().clone()
        for pair in self._zeros:
            for z in pair:
                z.grad = None


def _block_name(fork_name: str) -> str:
    """A block is named after the module owning its fork (``layer1.0``); U-Net levels as ``levels.i``."""
    return fork_name.removesuffix(".fork") if fork_name.endswith(".fork") else fork_name
