"""Sources remember when the config stopped listing them (``retired_at``), and the home page
of their site an OPML file gave (``site_url``, its ``htmlUrl``, written back on export).

A retired source is disabled, its posts kept; the config listing it again polls it again. No
source is retired by this migration: the next ``ingest run`` or ``ingest serve`` applies the
config and says which sources it retires.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ALTER TABLE, never a batch copy: on SQLite that recreates ``sources``, and its
    # ON DELETE CASCADE would take every sighting with it.
    op.add_column("sources", sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("sources", sa.Column("site_url", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("sources", "site_url")
    op.drop_column("sources", "retired_at")
