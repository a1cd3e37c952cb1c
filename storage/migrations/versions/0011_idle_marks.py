"""The idle mark: which settings the last ``ingest run`` ran with and when the store next has
work, so that a run with nothing due can say so without loading the ORM (``storage.idle``).

On SQLite, triggers erase the mark in the transaction of any change to ``sources`` or
``hook_deliveries``; PostgreSQL stores keep no mark, so they need none.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WATCHED = [
    (table, change)
    for table in ("sources", "hook_deliveries")
    for change in ("INSERT", "UPDATE", "DELETE")
]


def upgrade() -> None:
    op.create_table(
        "idle_marks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.Column("idle_until", sa.Float(), nullable=True),
        sa.Column("deliveries_pending", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    if op.get_bind().dialect.name == "sqlite":
        for table, change in WATCHED:
            op.execute(
                f"CREATE TRIGGER {table}_{change.lower()}_ends_idle AFTER {change} ON {table} "
                "BEGIN DELETE FROM idle_marks; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table, change in WATCHED:
            op.execute(f"DROP TRIGGER {table}_{change.lower()}_ends_idle")
    op.drop_table("idle_marks")
