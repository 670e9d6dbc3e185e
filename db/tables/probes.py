"""Per-layer gradient probes: the layer list of a run, and one row of packed statistics per probe step.

Storage shape chosen by measurement (bench/db_storage.py, bench/RESULTS.md "db storage"): one row per
(run, step) holding three little-endian float32 arrays beats one row per (run, step, layer) on both
backends — writes 2-6× faster, the full (step × layer) matrix 17-27× faster, one step's column as fast
or faster, and a quarter to a tenth of the disk.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base
from db.records import ProbeLayerRecord


class SqlProbeLayer(Base):
    """One probed weight layer of a run, in forward (depth) order; ``idx`` indexes the packed arrays."""

    __tablename__ = "probe_layers"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    skip: Mapped[bool] = mapped_column(Boolean)
    params: Mapped[int] = mapped_column(BigInteger)

    def to_record(self) -> ProbeLayerRecord:
        return ProbeLayerRecord(self.run_id, self.idx, self.name, bool(self.skip), self.params)


class SqlProbeStep(Base):
    """Statistics of every probe layer at one step: each column is ``float32[n_layers]`` little-endian."""

    __tablename__ = "probe_steps"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    epoch: Mapped[float] = mapped_column(Float)
    grad_norm: Mapped[bytes] = mapped_column(LargeBinary)
    weight_norm: Mapped[bytes] = mapped_column(LargeBinary)
    update_ratio: Mapped[bytes] = mapped_column(LargeBinary)
