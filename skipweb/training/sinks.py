"""What the trainer produces, and the small interface that consumes it.

The trainer never knows where numbers go. It calls a ``Sink``: the CLI's progress bar, an in-memory
recorder for tests, and the database writer of the workers all implement it. ``on_flush`` receives a
batch (everything since the last flush, one probe interval) so a database writer can use one
transaction per batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from skipweb.models import BlockLayer, ProbeLayer


@dataclass(frozen=True)
class MetricPoint:
    key: str  # one of skipweb.facts.Metric
    step: int  # optimizer steps done when the value was measured
    epoch: float  # fractional epoch
    value: float  # NaN/inf are kept as they are
    wall: float  # seconds since the run (first attempt) started


@dataclass(frozen=True)
class ProbePoint:
    """Per-probe-layer statistics at one step, lists in probe-layer order."""

    step: int
    epoch: float
    grad_norm: list[float]
    weight_norm: list[float]
    update_ratio: list[float]  # ||W_after - W_before|| / ||W_after|| for this step's update
    # per block (skipweb.training.probes.BlockProbe), lists in block order; empty for models without blocks
    skip_grad: list[float] = field(default_factory=list)
    branch_grad: list[float] = field(default_factory=list)
    act_mean: list[float] = field(default_factory=list)
    act_std: list[float] = field(default_factory=list)
    act_dead: list[float] = field(default_factory=list)
    gate: list[float] = field(default_factory=list)


@dataclass
class RunInfo:
    family: str
    depth: int
    params: int
    flops: int | None
    device: str
    torch_version: str
    probe_layers: list[ProbeLayer]
    steps_per_epoch: int
    total_steps: int
    resumed_from_step: int = 0
    blocks: list[BlockLayer] = field(default_factory=list)


@dataclass
class RunResult:
    status: str  # "succeeded" | "diverged" | "cancelled" | "failed"
    reason: str | None
    final: dict[str, float]  # last value of each epoch-level metric
    steps: int
    epochs_done: int
    wall: float


class Sink:
    """No-op base: override what you need."""

    def on_start(self, info: RunInfo) -> None: ...

    def on_flush(self, metrics: list[MetricPoint], probes: list[ProbePoint]) -> None: ...

    def on_epoch(self, epoch: int, step: int, summary: dict[str, float]) -> None: ...

    def on_checkpoint(self, epoch: int, step: int, path: Path) -> None: ...

    def on_end(self, result: RunResult) -> None: ...

    def should_stop(self) -> bool:
        """Polled once per flush; True cancels the run at that step (status ``cancelled``)."""
        return False

    def may_write(self) -> bool:
        """Asked just before a file the run owns (its checkpoint) is replaced; False keeps the old file
        (a worker that lost its lease writes nothing more for the run)."""
        return True


@dataclass
class Recorder(Sink):
    """Keeps everything in memory: used by tests, the CLI's --json output and benchmarks."""

    info: RunInfo | None = None
    metrics: list[MetricPoint] = field(default_factory=list)
    probes: list[ProbePoint] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    result: RunResult | None = None

    def on_start(self, info: RunInfo) -> None:
        self.info = info

    def on_flush(self, metrics: list[MetricPoint], probes: list[ProbePoint]) -> None:
        self.metrics.extend(metrics)
        self.probes.extend(probes)

    def on_epoch(self, epoch: int, step: int, summary: dict[str, float]) -> None:
        self.epochs.append({"epoch": epoch, "step": step, **summary})

    def on_end(self, result: RunResult) -> None:
        self.result = result

    def series(self, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self.metrics if m.key == key]
