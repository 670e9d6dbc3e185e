"""The queue a run was submitted to, stored on its row, so a requeued run goes back to the same queue.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

Nullable: rows from before this revision have none, and routing falls back to their spec's device.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("queue", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("queue")
