"""Posts keep their enclosure and media URLs, which are now part of their content hash.

The hash of a post without media is computed as before (title and body), so every stored hash
stays what the new rule gives for what is stored: the media of posts stored before this revision
were never kept, so they start as ``[]`` and nothing is recomputed, merged or split here. An
entry with an enclosure gets its new hash when its source next serves it: its post is revised in
place once (docs/decisions.md, "Identity").

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ALTER TABLE, never a batch copy: on SQLite that drops and recreates ``posts``,
    # which deletes every sighting and backlog row (ON DELETE CASCADE) and the search trigger.
    op.add_column(
        "posts", sa.Column("media", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
    )


def downgrade() -> None:
    op.drop_column("posts", "media")
