"""Leases for loss-landscape jobs: a worker killed mid-landscape no longer leaves its job running forever.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24

Plain SQLAlchemy types only (no imports from db.*), as in 0001. Batch mode so SQLite can drop the
columns again on downgrade (adding them is a plain ALTER TABLE there).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("lease_owner", "heartbeat_at", "attempts", "started_at")


def upgrade() -> None:
    with op.batch_alter_table("landscape_jobs") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("landscape_jobs") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
