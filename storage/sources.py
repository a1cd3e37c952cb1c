"""Managing sources by hand (``ingest feeds``): list, find, add, import many, remove.

Contract: each call is one transaction. ``import_sources`` adds every new source of a list or,
on any error, none. ``remove_source`` deletes the source and its sightings; its posts stay
(their ``source_id`` becomes NULL) unless ``purge`` is asked, which deletes the posts no other
source has seen, and keeps those another source also served.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from sqlalchemy import Connection, RowMapping, delete, exists, func, or_, select, update

from ingest.config import canonical_source_url
from ingest.types import SourceSpec, StoredSource
from storage.engine import Store
from storage.feeds import SOURCES, insert_source, known_urls, spec_columns, spec_from_row
from storage.models import PostRow, SightingRow

POSTS = PostRow.__table__  # type: ignore[attr-defined]
SIGHTINGS = SightingRow.__table__  # type: ignore[attr-defined]
T = SOURCES.c
_CHUNK = 500


class AddAction(StrEnum):
    ADDED = "added"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What ``import_sources`` did: the sources added, and each URL skipped with why."""

    added: list[StoredSource]
    skipped: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Removal:
    """What ``remove_source`` did to the source's posts."""

    source: StoredSource
    posts_deleted: int
    posts_kept: int


def merged_spec(old: SourceSpec, given: SourceSpec) -> SourceSpec:
    """``old`` with the settings ``given`` sets (a name, categories, an interval) replacing it."""
    return SourceSpec(
        url=old.url,
        name=given.name if given.name is not None else old.name,
        categories=given.categories or old.categories,
        interval_s=given.interval_s if given.interval_s is not None else old.interval_s,
        comments=given.comments if given.comments is not None else old.comments,
        max_body=given.max_body if given.max_body is not None else old.max_body,
    )


def list_sources(store: Store) -> list[StoredSource]:
    """Every source, by id."""
    with store.read() as conn:
        return [_stored(row) for row in conn.execute(select(SOURCES).order_by(T.id)).mappings()]


def find_source(store: Store, key: str, *, base: Path) -> StoredSource | None:
    """The source whose id, URL or former URL is ``key`` (a path is taken from ``base``)."""
    with store.read() as conn:
        if key.strip().isdigit():
            row = conn.execute(select(SOURCES).where(T.id == int(key))).mappings().first()
            return _stored(row) if row else None
        known = known_urls(conn)
        candidates = [key]
        with contextlib.suppress(ValueError):
            candidates.append(canonical_source_url(key, base))
        source_id = next((known[c] for c in candidates if c in known), None)
        return None if source_id is None else _get(conn, source_id)


def add_source(
    store: Store, spec: SourceSpec, *, origin: str, now: datetime
) -> tuple[StoredSource, AddAction]:
    """Add ``spec``; for a URL already stored, apply the settings ``spec`` gives instead.

    Settings ``spec`` leaves unset (None, no categories) keep their stored values, so adding
    a known feed again never loses its configuration.
    """
    with store.write() as conn:
        source_id = known_urls(conn).get(spec.url)
        if source_id is None:
            return _get(conn, insert_source(conn, spec, origin=origin, now=now)), AddAction.ADDED
        old = _get(conn, source_id)
        new = merged_spec(old.spec, spec)
        if new == old.spec:
            return old, AddAction.UNCHANGED
        conn.execute(update(SOURCES).where(T.id == source_id).values(**spec_columns(new)))
        return _get(conn, source_id), AddAction.UPDATED


def import_sources(
    store: Store, specs: Sequence[SourceSpec], *, origin: str, now: datetime
) -> ImportResult:
    """Add every source of ``specs`` whose URL is new, in order; skip the others, saying why."""
    added: list[StoredSource] = []
    skipped: list[tuple[str, str]] = []
    with store.write() as conn:
        known = known_urls(conn)
        first_of: dict[str, int] = {}
        for spec in specs:
            if spec.url in first_of:
                skipped.append((spec.url, "repeated in the file"))
            elif spec.url in known:
                skipped.append((spec.url, f"already stored as source {known[spec.url]}"))
            else:
                first_of[spec.url] = insert_source(conn, spec, origin=origin, now=now)
                added.append(_get(conn, first_of[spec.url]))
    return ImportResult(added, skipped)


def remove_source(store: Store, source_id: int, *, purge: bool) -> Removal | None:
    """Delete source ``source_id`` (None if there is none), and with ``purge`` its own posts."""
    with store.write() as conn:
        row = conn.execute(select(SOURCES).where(T.id == source_id)).mappings().first()
        if row is None:
            return None
        seen_here = exists(
            select(SIGHTINGS.c.id).where(
                SIGHTINGS.c.post_id == POSTS.c.id, SIGHTINGS.c.source_id == source_id
            )
        )
        seen_elsewhere = exists(
            select(SIGHTINGS.c.id).where(
                SIGHTINGS.c.post_id == POSTS.c.id, SIGHTINGS.c.source_id != source_id
            )
        )
        theirs = or_(POSTS.c.source_id == source_id, seen_here)
        deleted = 0
        if purge:
            doomed = list(conn.execute(select(POSTS.c.id).where(theirs, ~seen_elsewhere)).scalars())
            for start in range(0, len(doomed), _CHUNK):
                conn.execute(delete(POSTS).where(POSTS.c.id.in_(doomed[start : start + _CHUNK])))
            deleted = len(doomed)
        kept = conn.execute(select(func.count()).select_from(POSTS).where(theirs)).scalar_one()
        # Sightings go by ON DELETE CASCADE, posts.source_id becomes NULL by ON DELETE SET NULL.
        conn.execute(delete(SOURCES).where(T.id == source_id))
    return Removal(_stored(row), deleted, kept)


def _get(conn: Connection, source_id: int) -> StoredSource:
    return _stored(conn.execute(select(SOURCES).where(T.id == source_id)).mappings().one())


def _stored(row: RowMapping) -> StoredSource:
    return StoredSource(
        id=row["id"],
        spec=spec_from_row(row),
        origin=row["origin"],
        enabled=row["enabled"],
        title=row["title"],
        created_at=row["created_at"],
    )
