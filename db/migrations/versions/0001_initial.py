"""Initial schema: experiments, runs, metrics, latest_metrics, probe_layers, probe_steps.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Plain SQLAlchemy types only (no imports from db.*): a migration must keep meaning the same thing after
the models change. Timestamps are ``DateTime(timezone=True)``: timestamptz on PostgreSQL, UTC text on
SQLite (db.coltypes.UTCDateTime does the conversion in Python).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "'queued', 'running', 'succeeded', 'failed', 'diverged', 'cancelled'"


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("config_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("family", sa.String(length=64), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("dataset", sa.String(length=64), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("retry_of", sa.Integer(), nullable=True),
        sa.Column("worker_host", sa.String(length=255), nullable=True),
        sa.Column("device", sa.String(length=64), nullable=True),
        sa.Column("torch_version", sa.String(length=64), nullable=True),
        sa.Column("params", sa.BigInteger(), nullable=True),
        sa.Column("flops", sa.BigInteger(), nullable=True),
        sa.Column("steps_done", sa.Integer(), nullable=False),
        sa.Column("total_steps", sa.Integer(), nullable=True),
        sa.Column("epochs_done", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checkpoint_path", sa.Text(), nullable=True),
        sa.CheckConstraint(f"status IN ({STATUSES})", name=op.f("ck_runs_status")),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_runs_attempts")),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_runs_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["retry_of"], ["runs.id"], name=op.f("fk_runs_retry_of_runs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sqlite_autoincrement=True,
    )
    for col in ("config_hash", "experiment_id", "family", "status"):
        op.create_index(op.f(f"ix_runs_{col}"), "runs", [col], unique=False)

    # metrics and latest_metrics share their columns; the primary keys differ.
    for table, pk, extra in (
        ("metrics", ("run_id", "key", "step"), {"sqlite_with_rowid": False}),
        ("latest_metrics", ("run_id", "key"), {}),
    ):
        op.create_table(
            table,
            sa.Column("run_id", sa.Integer(), nullable=False),
            sa.Column("key", sa.String(length=128), nullable=False),
            sa.Column("step", sa.Integer(), nullable=False),
            sa.Column("epoch", sa.Float(), nullable=False),
            sa.Column("value", sa.Float(), nullable=True),
            sa.Column("is_nan", sa.Boolean(), server_default=sa.false(), nullable=False),
            sa.Column("wall", sa.Float(), nullable=False),
            sa.ForeignKeyConstraint(
                ["run_id"], ["runs.id"], name=op.f(f"fk_{table}_run_id_runs"), ondelete="CASCADE"
            ),
            sa.PrimaryKeyConstraint(*pk, name=op.f(f"pk_{table}")),
            **extra,
        )
    op.create_table(
        "probe_layers",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("skip", sa.Boolean(), nullable=False),
        sa.Column("params", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_probe_layers_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "idx", name=op.f("pk_probe_layers")),
    )
    op.create_table(
        "probe_steps",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Float(), nullable=False),
        sa.Column("grad_norm", sa.LargeBinary(), nullable=False),
        sa.Column("weight_norm", sa.LargeBinary(), nullable=False),
        sa.Column("update_ratio", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_probe_steps_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "step", name=op.f("pk_probe_steps")),
    )


def downgrade() -> None:
    for table in ("probe_steps", "probe_layers", "latest_metrics", "metrics"):
        op.drop_table(table)
    for col in ("status", "family", "experiment_id", "config_hash"):
        op.drop_index(op.f(f"ix_runs_{col}"), table_name="runs")
    op.drop_table("runs")
    op.drop_table("experiments")
