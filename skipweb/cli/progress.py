"""A rich progress bar as a trainer sink: steps, loss, and each epoch's test error."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from skipweb.facts import Metric
from skipweb.training.sinks import MetricPoint, ProbePoint, RunInfo, RunResult, Sink


class ProgressSink(Sink):
    def __init__(self, label: str, console: Console | None = None):
        self.label = label
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
        )
        self.task = None
        self.stats = {"loss": float("nan"), "test err": float("nan")}

    def __enter__(self) -> ProgressSink:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def _text(self) -> str:
        return "  ".join(f"{k} {v:.4f}" for k, v in self.stats.items())

    def on_start(self, info: RunInfo) -> None:
        self.task = self.progress.add_task(f"{self.label} ({info.device})", total=info.total_steps,
                                           completed=info.resumed_from_step, stats=self._text())

    def on_flush(self, metrics: list[MetricPoint], probes: list[ProbePoint]) -> None:
        losses = [m for m in metrics if m.key == Metric.TRAIN_LOSS]
        if losses and self.task is not None:
            self.stats["loss"] = losses[-1].value
            self.progress.update(self.task, completed=losses[-1].step, stats=self._text())

    def on_epoch(self, epoch: int, step: int, summary: dict[str, float]) -> None:
        if Metric.TEST_ERROR in summary and self.task is not None:
            self.stats["test err"] = summary[Metric.TEST_ERROR]
            self.progress.update(self.task, completed=step, stats=self._text())

    def on_end(self, result: RunResult) -> None:
        if self.task is not None:
            self.progress.update(self.task, stats=self._text() + f"  [{result.status}]")
