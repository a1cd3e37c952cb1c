"""Posts remember how many of their categories are their source's own (the export's folders).

A post's categories are its source's (the configured categories, then the feed's name; for a
front-matter file, its own categories as well), then the entry's tags. Only the first part names
the folders of a Hexo export, and the tags cannot be told apart afterwards, so digesting now
records the count. Posts stored before this revision get the rule for a feed entry: their first
source's configured categories and one more (the feed's name), at most all of their categories;
0 when that source was removed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ALTER TABLE, never a batch copy (see 0005: a copy of ``posts`` on SQLite cascades).
    op.add_column(
        "posts",
        sa.Column("source_categories", sa.Integer(), nullable=False, server_default="0"),
    )
    # json_array_length is SQLite's (JSON1, built in) and PostgreSQL's alike.
    op.execute(
        "UPDATE posts SET source_categories = (SELECT json_array_length(sources.categories) + 1 "
        "FROM sources WHERE sources.id = posts.source_id) WHERE source_id IS NOT NULL"
    )
    op.execute(
        "UPDATE posts SET source_categories = json_array_length(categories) "
        "WHERE source_categories > json_array_length(categories)"
    )


def downgrade() -> None:
    op.drop_column("posts", "source_categories")
