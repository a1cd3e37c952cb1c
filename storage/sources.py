"""The ``sources`` table: sources from the config and from ``ingest feeds``, their state.

Contract: each function taking a ``Database`` is one transaction; ``save_updates`` writes inside
the caller's (the check's). ``apply_sources`` is idempotent (an unchanged config changes
nothing) and never deletes. ``import_sources`` adds every new source of a list or, on any error,
none. ``remove_source`` deletes the source and its sightings; its posts stay (their
``source_id`` becomes NULL) unless ``purge`` is asked, which deletes the posts no other source
has seen, and keeps those another source also served.

URLs arrive as they are stored (``ingest.config.canonical_source_url``): the caller
canonicalises what a user typed, so this module compares URLs as strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ingest.types import SourceSpec, SourceState, SourceUpdate, StoredSource
from storage.bulk import Bulk
from storage.engine import Database
from storage.models import POSTS, SIGHTINGS, SOURCES, T

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


def list_sources(store: Database) -> list[StoredSource]:
    """Every source, by id."""
    with store.read() as conn:
        return [_stored(row) for row in conn.execute(select(SOURCES).order_by(T.id)).mappings()]


def find_source(store: Database, key: str, urls: Sequence[str] = ()) -> StoredSource | None:
    """The source whose id is ``key``, else whose URL or former URL is ``key`` or, failing that,
    one of ``urls`` (``key`` as the caller canonicalises it), in that order."""
    with store.read() as conn:
        if key.strip().isdigit():
            row = conn.execute(select(SOURCES).where(T.id == int(key))).mappings().first()
            return _stored(row) if row else None
        known = known_urls(conn)
        source_id = next((known[url] for url in (key, *urls) if url in known), None)
        return None if source_id is None else _get(conn, source_id)


def add_source(
    store: Database, spec: SourceSpec, *, origin: str, now: datetime
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
    store: Database, specs: Sequence[SourceSpec], *, origin: str, now: datetime
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


def remove_source(store: Database, source_id: int, *, purge: bool) -> Removal | None:
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


def apply_sources(
    store: Database, specs: Iterable[SourceSpec], *, origin: str, now: datetime
) -> list[int]:
    """Add the sources in ``specs`` or update their settings; their ids, in order.

    A spec whose URL a source was permanently redirected away from updates that source rather
    than adding the old URL again.
    """
    ids: list[int] = []
    with store.write() as conn:
        rows = conn.execute(select(SOURCES)).all()
        known = _url_index(rows)
        current = {row.id: spec_from_row(row._mapping) for row in rows}
        changed: list[dict[str, Any]] = []
        for spec in specs:
            source_id = known.get(spec.url)
            if source_id is None:
                source_id = insert_source(conn, spec, origin=origin, now=now)
                known[spec.url] = source_id
            elif _settings_differ(current[source_id], spec):
                changed.append({**spec_columns(spec), "source_id": source_id})
            current[source_id] = spec  # the same source listed again compares with this
            ids.append(source_id)
        if changed:
            conn.execute(_SAVE_SETTINGS, changed)
    return ids


def _settings_differ(stored: SourceSpec, wanted: SourceSpec) -> bool:
    """Whether applying ``wanted`` would change the stored settings (its URL aside: a moved
    source keeps answering to its old URL)."""
    return spec_columns(stored) != spec_columns(wanted)


def insert_source(conn: Connection, spec: SourceSpec, *, origin: str, now: datetime) -> int:
    """Add the source ``spec`` (its URL not yet known); its id.

    An upsert: replicas starting at once on a fresh store all add the config's sources, and
    the ones that lose the race take the id the winner stored.
    """
    row = {"url": spec.url, "origin": origin, "created_at": now, **spec_columns(spec)}
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    added = conn.execute(
        insert(SOURCES).values(row).on_conflict_do_nothing(index_elements=["url"]).returning(T.id)
    ).scalar()
    if added is None:
        added = conn.execute(select(T.id).where(T.url == spec.url)).scalar_one()
    return int(added)


def known_urls(conn: Connection) -> dict[str, int]:
    """Source id by URL, including the URLs sources were permanently redirected away from."""
    return _url_index(conn.execute(select(T.id, T.url, T.previous_urls)).all())


def _url_index(rows: Sequence[Any]) -> dict[str, int]:
    """``known_urls`` of source rows: a current URL wins over another source's previous one."""
    known = {row.url: row.id for row in rows}
    for row in rows:
        for old_url in row.previous_urls or ():
            known.setdefault(old_url, row.id)
    return known


def load_states(store: Database, ids: Sequence[int] | None = None) -> list[SourceState]:
    """The state of every source (or of ``ids``), ordered by id."""
    query = select(SOURCES).order_by(T.id)
    if ids is not None:
        query = query.where(T.id.in_(ids))
    with store.read() as conn:
        return [state_from_row(row) for row in conn.execute(query).mappings()]


_SPEC_COLUMNS = ("name", "categories", "interval_s", "comments", "max_body")
_SAVE_SETTINGS = (
    update(SOURCES)
    .where(T.id == bindparam("source_id"))
    .values({name: bindparam(name) for name in _SPEC_COLUMNS})
)
_STATE_COLUMNS = (
    "enabled",
    "title",
    "etag",
    "last_modified",
    "error_count",
    "last_error",
    "disabled_reason",
    "redirect_url",
    "redirect_count",
    "ttl_s",
    "posts_per_week",
)
_SAVE_STATE = (
    "UPDATE sources SET "
    + ", ".join(f"{name} = ?" for name in _STATE_COLUMNS)
    + ", last_error_kind = ?, next_check_at = ?, retry_after_until = ?, last_status = ?,"
    " last_checked_at = ?,"
    " last_success_at = CASE WHEN ? THEN ? ELSE last_success_at END,"
    " lease_owner = NULL, lease_until = NULL WHERE id = ?"
)


def save_updates(conn: Connection, changes: Sequence[tuple[SourceState, SourceUpdate]]) -> None:
    """Write each ``change`` onto its source, in the caller's transaction; the check ends the
    source's lease.

    A move to a URL another source already has is not applied (the two would collide); the
    redirect stays recorded instead.
    """
    bulk = Bulk(conn)
    rows = []
    for state, change in changes:
        values = [getattr(change, name) for name in _STATE_COLUMNS]
        if change.url != state.url:
            values[_STATE_COLUMNS.index("redirect_url")] = _move(conn, state, change.url)
        checked = bulk.time(change.checked_at)
        rows.append(
            (
                *values,
                change.last_error_kind.value if change.last_error_kind else None,
                bulk.time(change.next_check_at),
                bulk.time(change.retry_after_until),
                change.status.value,
                checked,
                change.status.succeeded,
                checked,
                state.id,
            )
        )
    bulk.many(_SAVE_STATE, rows)


def _move(conn: Connection, state: SourceState, url: str) -> str | None:
    """Move source ``state`` to ``url`` unless another source has it; the redirect to keep."""
    if conn.execute(select(T.id).where(T.url == url)).first() is not None:
        return url
    previous = conn.execute(select(T.previous_urls).where(T.id == state.id)).scalar_one()
    conn.execute(
        update(SOURCES)
        .where(T.id == state.id)
        .values(url=url, previous_urls=[*(previous or []), state.url])
    )
    return None


def spec_columns(spec: SourceSpec) -> dict[str, Any]:
    """The ``sources`` columns a source's settings fill."""
    columns = {name: getattr(spec, name) for name in _SPEC_COLUMNS}
    columns["categories"] = list(spec.categories)
    return columns


def spec_from_row(row: RowMapping) -> SourceSpec:
    """The settings of a ``sources`` row: what ``spec_columns`` wrote."""
    return SourceSpec(
        url=row["url"],
        name=row["name"],
        categories=tuple(row["categories"] or ()),
        interval_s=row["interval_s"],
        comments=row["comments"],
        max_body=row["max_body"],
    )


def state_from_row(row: RowMapping) -> SourceState:
    return SourceState(
        id=row["id"],
        url=row["url"],
        spec=spec_from_row(row),
        enabled=row["enabled"],
        title=row["title"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        last_checked_at=row["last_checked_at"],
        next_check_at=row["next_check_at"],
        error_count=row["error_count"],
        retry_after_until=row["retry_after_until"],
        disabled_reason=row["disabled_reason"],
        redirect_url=row["redirect_url"],
        redirect_count=row["redirect_count"],
        ttl_s=row["ttl_s"],
        posts_per_week=row["posts_per_week"],
    )


def count_sources(store: Database) -> int:
    """How many sources there are, enabled or not."""
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(SOURCES)).scalar_one())


def count_failing(store: Database) -> int:
    """How many enabled sources failed their last check."""
    with store.read() as conn:
        return count_failing_in(conn)


def count_failing_in(conn: Connection) -> int:
    """``count_failing`` in the transaction of ``conn``."""
    query = select(func.count()).select_from(SOURCES).where(T.enabled.is_(True), T.error_count > 0)
    return int(conn.execute(query).scalar_one())
