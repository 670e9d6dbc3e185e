"""Plain objects the queries return: no SQLAlchemy state, safe to cache, pickle and pass between threads.

The UI, the CLI and the workers only ever see these, never ORM instances bound to a session.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from skipweb.facts import FINAL_STATUSES, RUN_STATUSES  # noqa: F401  (re-exported: the db's vocabulary)

PROBE_STATS = ("grad_norm", "weight_norm", "update_ratio")


@dataclass(frozen=True)
class ExperimentRecord:
    id: int
    title: str
    description: str
    owner: str | None
    tags: list[str]
    created_at: datetime
    counts: dict[str, int] = field(default_factory=dict)  # runs per status (filled by list_experiments)


@dataclass(frozen=True)
class RunRecord:
    id: int
    experiment_id: int
    spec_json: str  # exactly as stored; validate with RunSpec.parse(spec_json)
    config_hash: str
    label: str
    family: str
    depth: int
    dataset: str
    seed: int
    status: str
    attempts: int
    lease_owner: str | None
    heartbeat_at: datetime | None
    worker_host: str | None
    device: str | None
    torch_version: str | None
    params: int | None
    flops: int | None
    steps_done: int
    total_steps: int | None
    epochs_done: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    reason: str | None
    checkpoint_path: str | None
    cancel_requested: bool
    retry_of: int | None
    latest: dict[str, float] = field(default_factory=dict)  # key -> value at the newest step (list_runs)

    @property
    def spec(self) -> dict[str, Any]:
        """The stored spec as a dict (not validated)."""
        return json.loads(self.spec_json)

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES

    def as_row(self) -> dict[str, Any]:
        """Flat dict for tables: latest metrics become columns named by their key."""
        row = asdict(self)
        row.pop("latest")
        row.pop("spec_json")
        return {**row, **self.latest}


@dataclass(frozen=True)
class ProbeLayerRecord:
    run_id: int
    idx: int
    name: str
    skip: bool  # a skip connection bridges this layer
    params: int
