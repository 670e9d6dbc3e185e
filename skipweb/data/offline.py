"""Datasets that need no network: scikit-learn's bundled handwritten digits, and generated shapes.

Every loader returns ``(pool, test)``: ``test`` is fixed (the same for every seed, like an official test set)
and ``load_dataset`` holds the validation split out of ``pool`` by seed. The generated sets are drawn from
fixed seeds, so they are the same data on every machine and need no cache.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from skipweb.data._common import Split, holdout

SHAPE_NAMES = ("circle", "square", "triangle")  # class k+1 in ``shapes`` masks, class k in ``shapes-cls``
SHAPES_SIZE = 32
_POOL_SEED, _TEST_SEED = 20_151_210, 20_150_518  # fixed: the data never changes with the run's seed
DIGITS_TEST = 360  # about 20% of 1797, fixed


def load_digits(data_dir: Path, download: bool) -> tuple[Split, Split]:
    """1797 real 8x8 handwritten digits (UCI, bundled with scikit-learn) as float32 in [0, 1], 1 channel.

    The test split is a fixed stratified 20%; ``data_dir`` and ``download`` are unused.
    """
    from sklearn.datasets import load_digits as sk_load_digits  # imported late: sklearn is slow to import

    bunch = sk_load_digits()
    x = torch.from_numpy(bunch.images).float().div_(16.0).unsqueeze(1)  # pixel counts 0..16 -> [0, 1]
    y = torch.from_numpy(bunch.target).long()
    rest, test = holdout(y, DIGITS_TEST, torch.Generator().manual_seed(_TEST_SEED))
    return Split(x[rest], y[rest]), Split(x[test], y[test])


def load_shapes(data_dir: Path, download: bool) -> tuple[Split, Split]:
    """2400 + 400 generated segmentation images (see :func:`make_shapes`)."""
    return make_shapes(2400, seed=_POOL_SEED), make_shapes(400, seed=_TEST_SEED)


def load_shapes_cls(data_dir: Path, download: bool) -> tuple[Split, Split]:
    """2400 + 400 generated one-shape images labelled by shape (see :func:`make_shapes_cls`)."""
    return make_shapes_cls(2400, seed=_POOL_SEED), make_shapes_cls(400, seed=_TEST_SEED)


def make_shapes(n: int, *, seed: int, size: int = SHAPES_SIZE, max_shapes: int = 3) -> Split:
    """``n`` RGB uint8 images with 1..``max_shapes`` shapes each on a noisy background, and their masks.

    Mask classes: 0 background, 1 circle, 2 square, 3 triangle; a later shape covers an earlier one. Radii
    are log-uniform from 1.5 to 9 px, so many shapes are only a few pixels wide: the fine detail that a
    U-Net's long skips carry to the output and a plain encoder-decoder loses.
    """
    g = torch.Generator().manual_seed(seed)
    kinds = torch.randint(0, 3, (n, max_shapes), generator=g)
    # Slot 0 always holds a shape; each further slot with probability 1/2 (on average 2 shapes per image).
    active = torch.rand(n, max_shapes, generator=g) < 0.5
    active[:, 0] = True
    radius = _log_uniform((n, max_shapes), 1.5, 9.0, g)
    return _render(kinds, active, radius, size=size, noise=18.0, g=g, margin=0.5)


def make_shapes_cls(n: int, *, seed: int, size: int = SHAPES_SIZE) -> Split:
    """``n`` RGB uint8 images with one shape each; the label is its kind (0 circle, 1 square, 2 triangle).

    Classes are balanced. Size (radius 2 to 9 px), rotation, position, colours and background noise all vary,
    so small shapes under heavy noise keep the task from being trivial; every shape lies wholly inside.
    """
    g = torch.Generator().manual_seed(seed)
    kinds = (torch.arange(n) % 3)[torch.randperm(n, generator=g)].unsqueeze(1)
    radius = _log_uniform((n, 1), 2.0, 9.0, g)
    # margin 1.6 r: a triangle's corners reach 1.56 r from its centre, a square's 1.25 r.
    out = _render(kinds, torch.ones(n, 1, dtype=torch.bool), radius, size=size, noise=28.0, g=g, margin=1.6)
    return Split(out.x, kinds.squeeze(1).clone())


def _log_uniform(shape: tuple[int, ...], low: float, high: float, g: torch.Generator) -> torch.Tensor:
    u = torch.rand(shape, generator=g)
    return torch.exp(math.log(low) + u * (math.log(high) - math.log(low)))


def _render(
    kinds: torch.Tensor,
    active: torch.Tensor,
    radius: torch.Tensor,
    *,
    size: int,
    noise: float,
    g: torch.Generator,
    margin: float,
) -> Split:
    """Paint shapes given per-slot kind/active/radius (each (n, slots)); position, angle and colour are drawn
    here; shape centres lie at least ``margin * radius`` inside the border. Mask class = kind + 1 (0 is the
    background). Each kind's pixel test runs once over all the slots holding that kind (no loop over images)."""
    n, slots = kinds.shape
    border = (radius * margin).clamp(max=size / 2)
    cx = border + torch.rand(n, slots, generator=g) * (size - 2 * border)
    cy = border + torch.rand(n, slots, generator=g) * (size - 2 * border)
    angle = torch.rand(n, slots, generator=g) * (2 * math.pi)
    background = torch.randint(0, 256, (n, 3), generator=g, dtype=torch.uint8)
    # Each channel of a shape's colour sits 64..192 (mod 256) from the background's: always visible.
    colour = (
        (background.unsqueeze(1).long() + torch.randint(64, 193, (n, slots, 3), generator=g)) % 256
    ).byte()
    pixel_noise = torch.randn(n, 3, size, size, generator=g) * noise

    coords = torch.arange(size, dtype=torch.float32) + 0.5  # pixel centres
    inside = torch.zeros(n, slots, size, size, dtype=torch.bool)
    for kind, test in enumerate((_in_circle, _in_square, _in_triangle)):
        where = ((kinds == kind) & active).nonzero(as_tuple=True)
        dx = coords.view(1, 1, size) - cx[where].view(-1, 1, 1)
        dy = coords.view(1, size, 1) - cy[where].view(-1, 1, 1)
        cos, sin = angle[where].cos().view(-1, 1, 1), angle[where].sin().view(-1, 1, 1)
        # Coordinates in the shape's rotated frame.
        inside[where] = test(dx * cos + dy * sin, dy * cos - dx * sin, radius[where].view(-1, 1, 1))

    # The topmost slot covering each pixel (later slots paint over earlier ones); -1 where none does.
    top = torch.full((n, size, size), -1, dtype=torch.long)
    for s in range(slots):
        top.masked_fill_(inside[:, s], s)
    covered = top >= 0
    slot = top.clamp(min=0)
    mask = torch.where(covered, kinds.gather(1, slot.view(n, -1)).view(n, size, size) + 1, 0)
    paint = colour.gather(1, slot.view(n, -1, 1).expand(-1, -1, 3)).permute(0, 2, 1).reshape(n, 3, size, size)
    image = torch.where(covered.unsqueeze(1), paint, background.view(n, 3, 1, 1))
    image = (image.float() + pixel_noise).round_().clamp_(0, 255).to(torch.uint8)
    return Split(image, mask)


# Each test keeps a shape of area pi r^2, so that size alone does not give the kind away.
def _in_circle(u: torch.Tensor, v: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    return u * u + v * v <= r * r


def _in_square(u: torch.Tensor, v: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    return torch.maximum(u.abs(), v.abs()) <= r * (math.sqrt(math.pi) / 2)


def _in_triangle(u: torch.Tensor, v: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    inradius = r * math.sqrt(math.pi / (3 * math.sqrt(3)))  # equilateral triangle
    inside = torch.ones(u.shape, dtype=torch.bool)
    for j in range(3):  # inside all three edges' half-planes
        phi = math.pi / 2 + 2 * math.pi * j / 3
        inside &= u * math.cos(phi) + v * math.sin(phi) <= inradius
    return inside
