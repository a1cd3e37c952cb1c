"""Sources keep their keep and block rules (``keep_rules``, ``block_rules``: JSON arrays of
regular expressions, ``ingest.filters``) and how many entries of their last document the rules
kept out (``last_filtered``).

Every source starts with no rules, as before; the next ``ingest run`` or ``ingest serve`` writes
the config's rules onto the config's sources.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-14
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ALTER TABLE, never a batch copy: on SQLite that recreates ``sources``, and its
    # ON DELETE CASCADE would take every sighting with it.
    for name in ("keep_rules", "block_rules"):
        op.add_column(
            "sources", sa.Column(name, sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
    op.add_column(
        "sources", sa.Column("last_filtered", sa.Integer(), nullable=False, server_default="0")
    )


def downgrade() -> None:
    op.drop_column("sources", "last_filtered")
    op.drop_column("sources", "block_rules")
    op.drop_column("sources", "keep_rules")
