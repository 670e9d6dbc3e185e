"""Loss landscapes: one row per computed 2-D surface, 1-D slice or initial→final interpolation.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Plain SQLAlchemy types only (no imports from db.*), as in 0001.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "landscapes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("grid", sa.Integer(), nullable=False),
        sa.Column("range", sa.Float(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("subset", sa.Integer(), nullable=True),
        sa.Column("x", sa.JSON(), nullable=False),
        sa.Column("y", sa.JSON(), nullable=True),
        sa.Column("loss", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('2d', '1d', 'interp')", name=op.f("ck_landscapes_kind")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_landscapes_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_landscapes")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_landscapes_run_id"), "landscapes", ["run_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_landscapes_run_id"), table_name="landscapes")
    op.drop_table("landscapes")
