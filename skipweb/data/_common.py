"""Types and small helpers shared by the dataset modules (machinery; the public names are re-exported by
``skipweb.data``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from skipweb.data.catalog import IGNORE_INDEX, DatasetError, DatasetInfo, MissingData  # noqa: F401 (re-exported)


@dataclass
class Split:
    """One split held as whole tensors: ``x`` (N,C,H,W) uint8 or float32 in [0, 1]; ``y`` (N,) class labels or
    (N,H,W) masks, both int64."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.dim() != 4 or len(self.x) != len(self.y):
            raise ValueError(
                f"Split needs x (N,C,H,W) and y with N rows; got {tuple(self.x.shape)}, {tuple(self.y.shape)}"
            )

    def __len__(self) -> int:
        return len(self.x)

    def take(self, index: torch.Tensor) -> Split:
        """The rows ``index`` (a 1-D int64 tensor) as a new split."""
        return Split(self.x[index], self.y[index])


@dataclass
class DataBundle:
    """A loaded dataset: three splits plus the per-channel statistics of the full training split."""

    info: DatasetInfo
    train: Split
    val: Split
    test: Split
    mean: tuple[float, ...]
    std: tuple[float, ...]


def balanced_order(y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random permutation of ``range(len(y))`` whose every prefix holds the classes in proportion.

    Each sample gets the key (rank within its class + 0.5) / class size, the ranks coming from a random
    permutation; sorting by that key interleaves the classes, so taking the first k samples is a stratified
    draw of k. Taking prefixes of one order also makes a smaller subset a part of a larger one.
    """
    n = len(y)
    perm = torch.randperm(n, generator=generator)
    if y.dim() != 1 or n == 0:  # masks: no class per sample, a plain random order
        return perm
    labels = y[perm]
    counts = torch.bincount(labels)
    sorted_labels, by_label = torch.sort(labels, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty(n, dtype=torch.long)
    rank[by_label] = torch.arange(n) - starts[sorted_labels]
    key = (rank.double() + 0.5) / counts[labels].double()
    # Stable sort: equal keys (classes of equal size) keep the random order of ``perm``.
    return perm[torch.sort(key, stable=True).indices]


def holdout(y: torch.Tensor, k: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``range(len(y))`` into (rest, held out k), stratified by class when ``y`` holds labels; both sorted."""
    order = balanced_order(y, generator)
    return order[k:].sort().values, order[:k].sort().values


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of images in [0, 1] (uint8 counts as /255), computed in chunks so that a
    large uint8 set never becomes one large float copy."""
    if len(x) == 0:
        raise ValueError("cannot compute statistics of an empty split")
    scale = 255.0 if x.dtype == torch.uint8 else 1.0
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for chunk in x.split(2048):
        c = chunk.float() / scale
        total += c.sum(dim=(0, 2, 3), dtype=torch.float64)
        squares += (c * c).sum(dim=(0, 2, 3), dtype=torch.float64)
    count = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = (squares / count - mean * mean).clamp_min(1e-12).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())
