"""Reading posts back: listing (with filters), one post by id, every post in a stable order.

Lists are newest first by the real UTC publish date (ties broken by id, so paging is stable).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, RowMapping, Select, exists, func, or_, select

from ingest.types import Post, StoredPost
from storage.engine import CASEFOLD, Database
from storage.models import POSTS, SIGHTINGS, SOURCES


@dataclass(frozen=True, slots=True)
class PostFilter:
    """Which posts ``list_posts`` returns; every field given narrows the list further.

    ``source_id``: posts that source served (any sighting, not only the first).
    ``category``: posts with this category, in any case (``Tech`` is ``tech``; case folded as
    Python's ``str.casefold`` on SQLite, as the database's ``lower()`` on PostgreSQL).
    ``since``/``until``: published within, both ends included, UTC.
    """

    source_id: int | None = None
    category: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def select_posts() -> Select[tuple[object, ...]]:
    """Posts with their first source's URL as ``source_url``: the rows ``stored_post`` reads."""
    return select(POSTS, SOURCES.c.url.label("source_url")).outerjoin(
        SOURCES, SOURCES.c.id == POSTS.c.source_id
    )


def list_posts(
    store: Database, *, limit: int | None = None, where: PostFilter | None = None
) -> list[StoredPost]:
    """Posts matching ``where``, newest first."""
    query = select_posts().order_by(POSTS.c.published_at.desc(), POSTS.c.id.desc()).limit(limit)
    if where is not None:
        query = query.where(*_conditions(where, store.is_sqlite))
    with store.read() as conn:
        return [stored_post(row) for row in conn.execute(query).mappings()]


def _conditions(where: PostFilter, is_sqlite: bool) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if where.source_id is not None:
        seen = select(SIGHTINGS.c.id).where(
            SIGHTINGS.c.post_id == POSTS.c.id, SIGHTINGS.c.source_id == where.source_id
        )
        conditions.append(or_(POSTS.c.source_id == where.source_id, exists(seen)))
    if where.category is not None:
        # Categories are a JSON array: SQLite's json_each and PostgreSQL's
        # json_array_elements_text both yield its items as a "value" column.
        items = func.json_each if is_sqlite else func.json_array_elements_text
        values = items(POSTS.c.categories).table_valued("value")
        fold = getattr(func, CASEFOLD) if is_sqlite else func.lower
        same = fold(values.c.value) == fold(where.category)
        conditions.append(exists(select(values.c.value).where(same)))
    if where.since is not None:
        conditions.append(POSTS.c.published_at >= where.since)
    if where.until is not None:
        conditions.append(POSTS.c.published_at <= where.until)
    return conditions


def get_post(store: Database, post_id: int) -> StoredPost | None:
    with store.read() as conn:
        row = conn.execute(select_posts().where(POSTS.c.id == post_id)).mappings().first()
    return stored_post(row) if row else None


def iter_posts(store: Database, *, since: datetime | None = None) -> Iterator[StoredPost]:
    """Every post (published at or after ``since``), by id: the order export names them in."""
    query = select_posts().order_by(POSTS.c.id)
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
            media=tuple(row["media"] or ()),
            source_categories=row["source_categories"],
        ),
        source=row["source_url"],
        revision=row["revision"],
        source_id=row["source_id"],
        first_seen=row["first_seen_at"],
        updated=row["updated_at"],
    )
