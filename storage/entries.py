"""Reading posts back: listing, one post by id, and every post in a stable order for export.

Lists are newest first by the real UTC publish date (ties broken by id, so paging is stable).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import RowMapping, Select, select

from ingest.types import Post, StoredPost
from storage.engine import Store
from storage.models import PostRow, SourceRow

POSTS = PostRow.__table__  # type: ignore[attr-defined]
SOURCES = SourceRow.__table__  # type: ignore[attr-defined]


def _select() -> Select[tuple[object, ...]]:
    return select(POSTS, SOURCES.c.url.label("source_url")).outerjoin(
        SOURCES, SOURCES.c.id == POSTS.c.source_id
    )


def list_posts(store: Store, *, limit: int | None = None) -> list[StoredPost]:
    """Posts, newest first."""
    query = _select().order_by(POSTS.c.published_at.desc(), POSTS.c.id.desc()).limit(limit)
    with store.read() as conn:
        return [stored_post(row) for row in conn.execute(query).mappings()]


def get_post(store: Store, post_id: int) -> StoredPost | None:
    with store.read() as conn:
        row = conn.execute(_select().where(POSTS.c.id == post_id)).mappings().first()
    return stored_post(row) if row else None


def iter_posts(store: Store, *, since: datetime | None = None) -> Iterator[StoredPost]:
    """Every post (published at or after ``since``), by id: the order export names them in."""
    query = _select().order_by(POSTS.c.id)
    if since is not None:
        query = query.where(POSTS.c.published_at >= since)
    with store.read() as conn:
        for row in conn.execute(query.execution_options(yield_per=500)).mappings():
            yield stored_post(row)


def stored_post(row: RowMapping) -> StoredPost:
    return StoredPost(
        id=row["id"],
        post=Post(
            title=row["title"],
            categories=tuple(row["categories"] or ()),
            headimg=row["headimg"],
            author=row["author"],
            comments=row["comments"],
            published=row["published_at"],
            thumbnail=row["thumbnail"],
            body=row["body"],
            guid=row["guid"],
            link=row["link"],
            content_hash=row["content_hash"],
        ),
        source=row["source_url"],
        revision=row["revision"],
    )
