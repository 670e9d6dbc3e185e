"""Loss landscapes around a run's final weights (Li et al. 2018, "Visualizing the Loss Landscape of Neural
Nets", https://arxiv.org/abs/1712.09913).

* **Directions** are Gaussian with **filter normalization**: every filter of a random direction (for a conv
  weight each output filter ``d[i]``, for a linear weight each row) is rescaled to the norm of the matching
  filter of the weights, ``d[i] *= ||w[i]|| / ||d[i]||``. 1-D parameters (biases, BatchNorm scale and shift)
  get a zero direction by default (``include_1d=True`` scales them as one filter instead). Buffers
  (BatchNorm running statistics) are never perturbed. Directions come from a seeded CPU generator, so one
  seed gives the same directions, hence the same landscape, on every machine.
* **2-D surface**: ``loss(w + a·d1 + b·d2)`` on an N×N grid over ``[-R, R]²``; ``loss[i][j]`` is at
  ``(x[j], y[i])`` (rows are y, as plotly's contour wants). With N odd the centre is exactly the final
  weights. The centre row (``y = 0``) is the 1-D slice along ``d1``.
* **Interpolation** from the initial to the final weights, ``(1 - α)·w0 + α·w1``, every floating-point
  state entry included (BatchNorm running statistics too), so ``α = 0`` is exactly the initial model and
  ``α = 1`` exactly the final one.

The loss is the mean cross-entropy over a fixed subset of the training split, without augmentation, with
the model in **eval mode: BatchNorm uses its running statistics** (those of the final weights for the
surface), not the statistics of the subset. Everything here is plain torch; storage and the CLI live in
``db.landscapes`` and ``skipweb.cli.landscape``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from skipweb import facts
from skipweb.data import IGNORE_INDEX, DeviceLoader, load_dataset

Direction = dict[str, torch.Tensor]
Batches = list[tuple[torch.Tensor, torch.Tensor]]
Progress = Callable[[int], None]  # called with the number of loss evaluations just done (1)

DEFAULT_GRID = facts.LANDSCAPE_GRID
DEFAULT_RANGE = facts.LANDSCAPE_RANGE
DEFAULT_SUBSET = facts.LANDSCAPE_SUBSET
DEFAULT_SEED = facts.LANDSCAPE_SEED


# ---- directions ------------------------------------------------------------------------------------------
def random_direction(
    model: nn.Module, generator: torch.Generator, *, include_1d: bool = False, eps: float = 1e-10
) -> Direction:
    """A filter-normalized Gaussian direction for every parameter of ``model`` (keyed by parameter name).

    Filter ``i`` of a weight with ``dim >= 2`` is ``d[i]`` (an output filter of a conv, a row of a linear
    layer); it is scaled to ``||w[i]||``. A zero weight filter gives a zero direction filter. 1-D parameters
    are zero unless ``include_1d``, which scales the whole vector to ``||w||``. Drawn on the CPU in
    parameter order from ``generator``, then moved to the parameter's device.
    """
    out: Direction = {}
    for name, p in model.named_parameters():
        w = p.detach()
        d = torch.randn(w.shape, generator=generator, dtype=torch.float32).to(w.device, w.dtype)
        if w.dim() <= 1:
            d = d * (w.norm() / (d.norm() + eps)) if include_1d else torch.zeros_like(w)
        else:
            w_norm = w.reshape(w.shape[0], -1).norm(dim=1)
            d_norm = d.reshape(d.shape[0], -1).norm(dim=1)
            scale = (w_norm / (d_norm + eps)).view(-1, *([1] * (w.dim() - 1)))
            d = d * scale
        out[name] = d
    return out


def directions(model: nn.Module, seed: int, *, count: int = 2, include_1d: bool = False) -> list[Direction]:
    """``count`` filter-normalized directions from one seed (reproducible)."""
    g = torch.Generator().manual_seed(seed)
    return [random_direction(model, g, include_1d=include_1d) for _ in range(count)]


# ---- loss --------------------------------------------------------------------------------------------
def make_batches(
    split,
    *,
    mean,
    std,
    subset: int | None = DEFAULT_SUBSET,
    seed: int = DEFAULT_SEED,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
) -> Batches:
    """Normalized, unaugmented batches of ``subset`` training samples drawn with ``seed`` (all if None)."""
    if subset is not None and subset < len(split):
        g = torch.Generator().manual_seed(seed)
        split = split.take(torch.randperm(len(split), generator=g)[:subset].sort().values)
    loader = DeviceLoader(split, batch_size=batch_size, mean=mean, std=std, device=device)
    return list(loader)


@torch.no_grad()
def loss_of(model: nn.Module, batches: Batches) -> float:
    """Mean cross-entropy over ``batches`` in eval mode (BatchNorm uses its running statistics)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for x, y in batches:
        logits = model(x).float()
        total += nn.functional.cross_entropy(logits, y, ignore_index=IGNORE_INDEX, reduction="sum").item()
        count += int((y != IGNORE_INDEX).sum())
    model.train(was_training)
    return total / max(1, count)


def _params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@torch.no_grad()
def _set(
    model: nn.Module, base: Mapping[str, torch.Tensor], steps: Iterable[tuple[float, Direction]]
) -> None:
    steps = [(c, d) for c, d in steps if c != 0.0]
    for name, p in model.named_parameters():
        w = base[name].clone()
        for c, d in steps:
            w.add_(d[name], alpha=c)
        p.copy_(w)


def coords(grid: int, range_: float) -> list[float]:
    """``grid`` evenly spaced points over ``[-range_, range_]``; the middle one is exactly 0 for odd ``grid``."""
    if grid < 1:
        raise ValueError("grid must be at least 1")
    if grid == 1:
        return [0.0]
    return [range_ * (2 * k - (grid - 1)) / (grid - 1) for k in range(grid)]


def surface_2d(
    model: nn.Module,
    batches: Batches,
    d1: Direction,
    d2: Direction,
    *,
    grid: int = DEFAULT_GRID,
    range_: float = DEFAULT_RANGE,
    progress: Progress | None = None,
) -> tuple[list[float], list[float], list[list[float]]]:
    """``(x, y, loss)`` with ``loss[i][j] = L(w + x[j]·d1 + y[i]·d2)``; ``model`` is restored afterwards."""
    base = _params(model)
    xs = ys = coords(grid, range_)
    rows = []
    try:
        for b in ys:
            row = []
            for a in xs:
                _set(model, base, ((a, d1), (b, d2)))
                row.append(loss_of(model, batches))
                if progress:
                    progress(1)
            rows.append(row)
    finally:
        _set(model, base, ())
    return list(xs), list(ys), rows


def line_1d(
    model: nn.Module,
    batches: Batches,
    d: Direction,
    *,
    grid: int = DEFAULT_GRID,
    range_: float = DEFAULT_RANGE,
    progress: Progress | None = None,
) -> tuple[list[float], list[float]]:
    """``(x, loss)`` with ``loss[j] = L(w + x[j]·d)``; ``model`` is restored afterwards."""
    base = _params(model)
    xs = coords(grid, range_)
    out = []
    try:
        for a in xs:
            _set(model, base, ((a, d),))
            out.append(loss_of(model, batches))
            if progress:
                progress(1)
    finally:
        _set(model, base, ())
    return xs, out


@torch.no_grad()
def interpolate(
    model: nn.Module,
    batches: Batches,
    initial: Mapping[str, torch.Tensor],
    final: Mapping[str, torch.Tensor],
    *,
    alphas: Iterable[float],
    progress: Progress | None = None,
) -> list[tuple[float, float]]:
    """``[(α, L((1-α)·initial + α·final))]`` over full state dicts: parameters interpolated (and
    extrapolated for α outside [0, 1]), float buffers interpolated with α clamped to [0, 1], other entries
    from ``final``. ``model`` is left holding ``final``."""
    out = []
    params = dict(model.named_parameters())
    for a in alphas:
        state = {}
        for k, v1 in final.items():
            v0 = initial[k]
            if not v1.is_floating_point():
                state[k] = v1
            else:
                # buffers (BatchNorm running statistics) are not extrapolated: a running variance
                # extrapolated past an end can turn negative
                t = a if k in params else min(1.0, max(0.0, a))
                state[k] = v0 if t == 0.0 else v1 if t == 1.0 else torch.lerp(v0.to(v1.dtype), v1, float(t))
        model.load_state_dict(state)
        out.append((float(a), loss_of(model, batches)))
        if progress:
            progress(1)
    model.load_state_dict(final)
    return out


def interp_alphas(grid: int) -> list[float]:
    """Interpolation points: ``2·grid - 1`` over ``[-0.5, 1.5]`` (0 and 1 included exactly)."""
    n = max(2, grid)
    return [round(-0.5 + 2.0 * k / (2 * n - 2), 10) for k in range(2 * n - 1)]


# ---- a run ---------------------------------------------------------------------------------------------
@dataclass
class Landscape:
    grid: int
    range: float
    seed: int
    subset: int | None
    x: list[float]
    y: list[float]
    loss: list[list[float]]  # rows: loss[i][j] at (x[j], y[i])
    interp: list[tuple[float, float]] = field(default_factory=list)  # (alpha, loss)
    final_loss: float = float("nan")

    @property
    def line(self) -> list[float]:
        """The 1-D slice along the first direction (the centre row)."""
        return self.loss[len(self.y) // 2]

    def as_json(self) -> dict:
        return {
            "grid": self.grid,
            "range": self.range,
            "seed": self.seed,
            "subset": self.subset,
            "x": self.x,
            "y": self.y,
            "loss": [[_finite(v) for v in r] for r in self.loss],
            "interp": [{"alpha": a, "loss": _finite(v)} for a, v in self.interp],
        }


def _finite(v: float) -> float | None:
    return v if v == v and abs(v) != float("inf") else None


def build_models(spec, final_state: Mapping[str, torch.Tensor], *, data_dir: Path, device: str = "cpu"):
    """``(data, initial_model, final_model)`` for a run's spec, built exactly as the Trainer does —
    ``seed_everything(seed)``, ``load_dataset``, then ``spec.build_model`` — so ``initial_model`` holds the
    run's initial weights."""
    from skipweb.training.trainer import seed_everything

    seed_everything(spec.seed)
    data = load_dataset(spec.dataset, data_dir=data_dir, seed=spec.seed, subset=spec.subset)
    initial = spec.build_model(data.info).to(device)
    final = spec.build_model(data.info).to(device)
    final.load_state_dict(final_state)
    return data, initial, final


def compute(
    spec,
    final_state: Mapping[str, torch.Tensor],
    *,
    data_dir: Path,
    grid: int = DEFAULT_GRID,
    range_: float = DEFAULT_RANGE,
    subset: int | None = DEFAULT_SUBSET,
    seed: int = DEFAULT_SEED,
    device: str = "cpu",
    interp: bool = True,
    progress: Progress | None = None,
) -> Landscape:
    """The 2-D filter-normalized surface around ``final_state`` and the initial→final interpolation.

    Cost: ``grid² + (2·grid - 1)`` passes over ``subset`` samples (``grid²`` without ``interp``).
    """
    if grid < 1 or range_ <= 0:
        raise ValueError("grid must be >= 1 and range > 0")
    data, initial, model = build_models(spec, final_state, data_dir=data_dir, device=device)
    batches = make_batches(data.train, mean=data.mean, std=data.std, subset=subset, seed=seed, device=device)
    d1, d2 = directions(model, seed)
    x, y, loss = surface_2d(model, batches, d1, d2, grid=grid, range_=range_, progress=progress)
    result = Landscape(grid, range_, seed, subset, x, y, loss, final_loss=loss_of(model, batches))
    if interp:
        init_state = {k: v.detach().clone() for k, v in initial.state_dict().items()}
        final_full = {k: v.detach().clone() for k, v in model.state_dict().items()}
        result.interp = interpolate(
            model, batches, init_state, final_full, alphas=interp_alphas(grid), progress=progress
        )
    return result


def evaluations(grid: int, interp: bool = True) -> int:
    """How many loss evaluations :func:`compute` makes (for progress bars)."""
    return grid * grid + (len(interp_alphas(grid)) if interp else 0)
