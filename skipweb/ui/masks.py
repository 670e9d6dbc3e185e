"""Segmentation masks as pictures: class ids coloured from one palette, ignored pixels grey."""

from __future__ import annotations

PALETTE = [(0, 0, 0), (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180)]
IGNORE_COLOR = (128, 128, 128)


def colorize(mask):
    """(H, W) class ids -> (H, W, 3) uint8; ignored pixels (255) grey."""
    import numpy as np

    out = np.zeros((*mask.shape, 3), dtype=np.uint8)
    for c in np.unique(mask):
        out[mask == c] = IGNORE_COLOR if c == 255 else PALETTE[int(c) % len(PALETTE)]
    return out
