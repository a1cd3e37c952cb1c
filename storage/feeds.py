"""Sources in the store: adding them from the config, reading their state, saving each check.

Contract: ``apply_sources`` is idempotent (an unchanged config changes nothing) and never
deletes; ``save_updates`` writes every state column of sources from their ``FeedUpdate`` inside
the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ingest.types import FeedState, FeedUpdate, SourceSpec
from storage.bulk import Bulk
from storage.engine import Store
from storage.models import SourceRow

SOURCES = SourceRow.__table__  # type: ignore[attr-defined]
T = SOURCES.c


def apply_sources(
    store: Store, specs: Iterable[SourceSpec], *, origin: str, now: datetime
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


def load_states(store: Store, ids: Sequence[int] | None = None) -> list[FeedState]:
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


def save_updates(conn: Connection, changes: Sequence[tuple[FeedState, FeedUpdate]]) -> None:
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


def _move(conn: Connection, state: FeedState, url: str) -> str | None:
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


def state_from_row(row: RowMapping) -> FeedState:
    return FeedState(
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
