"""Drop ``runs.queue`` (added by 0005): nothing read it. The queue of a run is decided by its spec's device
alone (skipweb.facts.queue_for, via skipweb.services.broker.route) at the first publish and at every
republish, so a stored copy could only disagree with the rule (docs/runs.md, "Where a run goes").

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _without_losing_ids(lambda batch: batch.drop_column("queue"))


def downgrade() -> None:
    _without_losing_ids(lambda batch: batch.add_column(sa.Column("queue", sa.String(length=16), nullable=True)))


def _without_losing_ids(change) -> None:
    """SQLite drops a column by copying the table: keep it AUTOINCREMENT, and keep its sequence (ids of
    deleted runs are never given again). Migrations run with foreign keys off, so the copy's DROP TABLE
    cascades to no metric or probe row."""
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    seq = bind.execute(sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'runs'")).scalar() if sqlite else None
    with op.batch_alter_table("runs", table_kwargs={"sqlite_autoincrement": True} if sqlite else {}) as batch:
        change(batch)
    if seq is not None:
        bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = 'runs'"))
        bind.execute(sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('runs', :seq)"), {"seq": seq})

