"""The one settings object. Environment variables ``SKIPWEB_*`` (or a ``.env`` file) override defaults.

Web, CLI and worker processes each build their own ``Settings`` from the environment; nothing mutable is
shared between them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SKIPWEB_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path(".skipweb"), description="Datasets, checkpoints, the embedded DB and broker")
    database_url: str | None = Field(None, description="Default: SQLite file in the data dir")
    broker_url: str | None = Field(None, description="Default: embedded broker (no server) in the data dir")
    lease_seconds: int = Field(
        120, description="A running run or landscape job whose heartbeat is older than this is requeued"
    )
    heartbeat_seconds: int = Field(15, description="How often a worker renews its lease")
    max_attempts: int = Field(
        3, description="Attempts before a run (or landscape job) that keeps killing workers fails"
    )
    db_retry_seconds: float = Field(
        120, description="How long a worker retries an unreachable or locked database before it hands its run "
        "back to the queue (resumed later from its checkpoint, not counted as a crashed attempt)"
    )
    republish_seconds: float = Field(
        30, description="A run or landscape job queued this long while every broker queue is empty lost its "
        "message (a broker restarted without persistence): the sweeper publishes it again"
    )
    auth_file: Path | None = Field(None, description="Password file (bcrypt hashes) for team sign-in")
    allow_anonymous: bool = Field(
        False, description="Serve the dashboard on a non-loopback address with no sign-in configured (open door)"
    )
    cuda_graphs: bool = Field(
        False,
        description="GPU workers: replay each run's forward and backward as CUDA graphs (fewer kernel launches; "
        "probe steps stay eager). Off until bench/gpu.sh has measured it on a GPU",
    )
    host: str = Field("127.0.0.1", description="Address the dashboard binds to")
    port: int = Field(8501, description="Port of the dashboard")

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'skipweb.db').resolve()}"

    @property
    def checkpoint_dir(self) -> Path:
        return self.data_dir / "checkpoints"

    @property
    def datasets_dir(self) -> Path:
        return self.data_dir / "datasets"


@lru_cache
def get_settings() -> Settings:
    return Settings()
