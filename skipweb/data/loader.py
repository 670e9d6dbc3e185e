"""A loader that keeps a whole split on the device and augments whole batches there.

The fastest CIFAR trainers hold the data on the GPU: a batch is an index_select, normalisation and
augmentation are a few tensor ops, and data loading never waits on the CPU. Every random number (shuffle,
crop offsets, flips) is drawn on the CPU from one ``torch.Generator`` at the start of an epoch, so saving the
generator's state with a checkpoint replays the exact same epoch after a resume, on any device.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from skipweb.data._common import IGNORE_INDEX, DatasetError, Split
from skipweb.data.catalog import AUGMENTS


class DeviceLoader:
    """Batches of ``(x, y)`` from a split held on ``device``.

    Args:
        split: the images (uint8 or float32 in [0, 1]) and labels or masks.
        batch_size: samples per batch.
        mean, std: per-channel statistics of the images in [0, 1]; batches come out as ``(x - mean) / std``.
        device: where the split lives and batches are made.
        shuffle: a fresh random order each epoch.
        augment: ``"crop"`` pads by ``image_size // 8`` (4 px for 32x32) with zeros and crops back at a random
            offset per sample; ``"flip"`` mirrors half of the samples left-right; ``"crop+flip"`` both (He et al.,
            2015, https://arxiv.org/abs/1512.03385). Masks move with their images; the padded border of a mask
            is ``IGNORE_INDEX`` (255).
        generator: a CPU generator for all randomness (``None``: torch's global one). Save its state before an
            epoch to replay that epoch exactly.
        drop_last: drop a final batch smaller than ``batch_size``.
        channels_last: return ``x`` in channels-last memory format (faster convolutions on recent GPUs).
    """

    def __init__(
        self,
        split: Split,
        *,
        batch_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        device: torch.device | str = "cpu",
        shuffle: bool = False,
        augment: str = "none",
        generator: torch.Generator | None = None,
        drop_last: bool = False,
        channels_last: bool = False,
    ) -> None:
        if augment not in AUGMENTS:
            raise DatasetError(f"unknown augment '{augment}'; choose one of: {', '.join(AUGMENTS)}")
        if batch_size < 1:
            raise DatasetError(f"batch_size must be at least 1, got {batch_size}")
        channels = split.x.shape[1]
        if len(mean) != channels or len(std) != channels:
            raise DatasetError(
                f"mean and std need {channels} values (one per channel), got {len(mean)} and {len(std)}"
            )
        self.device = torch.device(device)
        self.x = split.x.to(self.device)
        self.y = split.y.to(self.device)
        # Fold the uint8 -> [0, 1] scaling into the statistics: one subtract and one multiply per batch.
        scale = 255.0 if self.x.dtype == torch.uint8 else 1.0
        self._shift = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1) * scale
        self._inv_scale = 1.0 / (
            torch.tensor(std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1) * scale
        )
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.crop = "crop" in augment
        self.flip = "flip" in augment
        self.pad = max(1, self.x.shape[-1] // 8)
        self.generator = generator
        self.drop_last = drop_last
        self.channels_last = channels_last

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iter_from(0)

    def iter_from(self, start: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The epoch's batches from batch ``start`` on. To resume mid-epoch exactly, restore the generator
        state saved before the epoch began and skip the batches already trained on: the epoch's random
        numbers are all drawn first, so the remaining batches are the ones the interrupted epoch would have
        produced, and the skipped ones cost nothing."""
        n, g = len(self.x), self.generator
        # Draw the whole epoch's randomness up front, in a fixed order, and ship it to the device once.
        order = torch.randperm(n, generator=g) if self.shuffle else None
        offsets = torch.randint(0, 2 * self.pad + 1, (n, 2), generator=g) if self.crop else None
        flips = torch.rand(n, generator=g) < 0.5 if self.flip else None
        # Then shuffle and augment the whole epoch in a few large kernels, so that a batch is a slice plus
        # its normalisation: on a GPU the per-batch cost is kernel launches, not bytes (CIFAR-10 as uint8 is
        # 150 MB; the epoch's copy costs a few milliseconds once).
        x, y = self.x, self.y
        if order is not None:
            order = order.to(self.device, non_blocking=True)
            x, y = x.index_select(0, order), y.index_select(0, order)
        if offsets is not None or flips is not None:
            x, y = self._augment(
                x,
                y,
                None if offsets is None else offsets.to(self.device, non_blocking=True),
                None if flips is None else flips.to(self.device, non_blocking=True),
            )
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)  # slices and .float() keep the format
        for b in range(start, len(self)):
            sel = slice(b * self.batch_size, (b + 1) * self.batch_size)
            yield (x[sel].float() - self._shift) * self._inv_scale, y[sel]

    def _augment(
        self, x: torch.Tensor, y: torch.Tensor, offsets: torch.Tensor | None, flips: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop and flip as one lookup: each output pixel's source row and column, per sample (all of an
        epoch's samples at once). A crop is a
        shifted window into the zero-padded batch (masks padded with IGNORE_INDEX); a flip reverses the
        window's columns. One gather on the still-uint8 batch, no pass per transform, no loop over samples."""
        batch, height, width = len(x), x.shape[-2], x.shape[-1]
        rows = torch.arange(height, device=x.device).expand(batch, height)
        cols = torch.arange(width, device=x.device).expand(batch, width)
        if offsets is not None:
            rows, cols = rows + offsets[:, :1], cols + offsets[:, 1:]
            x = F.pad(x, (self.pad,) * 4)
            if y.dim() == 3:
                y = F.pad(y, (self.pad,) * 4, value=IGNORE_INDEX)
        if flips is not None:
            cols = torch.where(flips[:, None], cols.flip(1), cols)
        x = window(x, rows, cols)
        if y.dim() == 3:
            y = window(y.unsqueeze(1), rows, cols).squeeze(1)
        return x, y


def window(source: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``out[b, c, i, j] = source[b, c, rows[b, i], cols[b, j]]`` for ``source`` (B,C,H',W'), ``rows`` (B,H) and
    ``cols`` (B,W): a per-sample crop (and, with reversed ``cols``, flip) as one gather over flattened pixels."""
    b, c, _, source_width = source.shape
    flat = (rows[:, :, None] * source_width + cols[:, None, :]).view(b, 1, -1)  # (B, 1, H*W)
    out = source.flatten(2).gather(2, flat.expand(b, c, -1))
    return out.view(b, c, rows.shape[1], cols.shape[1])
