"""Per-block probes (block_layers, block_steps) and landscape requests (landscape_jobs).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Plain SQLAlchemy types only (no imports from db.*), as in 0001.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BLOCK_STATS = ("skip_grad", "branch_grad", "act_mean", "act_std", "act_dead", "gate")


def _fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f(f"fk_{table}_run_id_runs"), ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "block_layers",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        _fk("block_layers"),
        sa.PrimaryKeyConstraint("run_id", "idx", name=op.f("pk_block_layers")),
    )
    op.create_table(
        "block_steps",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Float(), nullable=False),
        *[sa.Column(name, sa.LargeBinary(), nullable=False) for name in BLOCK_STATS],
        _fk("block_steps"),
        sa.PrimaryKeyConstraint("run_id", "step", name=op.f("pk_block_steps")),
    )
    op.create_table(
        "landscape_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("grid", sa.Integer(), nullable=False),
        sa.Column("range", sa.Float(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("subset", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'queued', 'running', 'succeeded', 'failed')", name=op.f("ck_landscape_jobs_status")
        ),
        _fk("landscape_jobs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_landscape_jobs")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_landscape_jobs_run_id"), "landscape_jobs", ["run_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_landscape_jobs_run_id"), table_name="landscape_jobs")
    for table in ("landscape_jobs", "block_steps", "block_layers"):
        op.drop_table(table)
