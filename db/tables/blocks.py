"""Per-block probes (skipweb.blocks): what flows through each skip connection and what each block emits.

A *block* is a unit with a merge: a residual/highway/dense block, a U-Net encoder stage whose output feeds
a long skip, or (for a no-skip twin) the same block with its skip removed. Like ``probe_steps``, one row
per (run, step) holds little-endian float32 arrays indexed by ``block_layers.idx``; NaN where a value does
not exist (no skip path in a plain block, no gate outside highway blocks).
"""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base
from skipweb.facts import BLOCK_STATS  # noqa: F401  (the column order of the stored arrays)


class SqlBlockLayer(Base):
    """One block of a run, in forward (depth) order."""

    __tablename__ = "block_layers"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # add | concat | gate | long | none


class SqlBlockStep(Base):
    """Statistics of every block at one probe step: each column is ``float32[n_blocks]`` little-endian."""

    __tablename__ = "block_steps"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    epoch: Mapped[float] = mapped_column(Float)
    skip_grad: Mapped[bytes] = mapped_column(LargeBinary)  # ||dL/dx|| reaching the block input via the skip
    branch_grad: Mapped[bytes] = mapped_column(LargeBinary)  # ... via the transformed branch
    act_mean: Mapped[bytes] = mapped_column(LargeBinary)  # block output mean
    act_std: Mapped[bytes] = mapped_column(LargeBinary)  # block output standard deviation
    act_dead: Mapped[bytes] = mapped_column(LargeBinary)  # fraction of channels <= 0 for the whole batch
    gate: Mapped[bytes] = mapped_column(LargeBinary)  # highway: mean transform gate T; NaN elsewhere
