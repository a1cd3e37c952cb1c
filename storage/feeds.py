"""Sources in the store: adding them from the config, reading their state, saving each check.

Contract: ``apply_sources`` is idempotent (an unchanged config changes nothing) and never
deletes; ``save_update`` writes every state column of one source from a ``FeedUpdate`` inside
the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, select, update

from ingest.types import FeedState, FeedUpdate, SourceSpec
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
        known = known_urls(conn)
        for spec in specs:
            source_id = known.get(spec.url)
            if source_id is None:
                source_id = insert_source(conn, spec, origin=origin, now=now)
                known[spec.url] = source_id
            else:
                conn.execute(
                    update(SourceRow).where(T.id == source_id).values(**spec_columns(spec))
                )
            ids.append(source_id)
    return ids


def insert_source(conn: Connection, spec: SourceSpec, *, origin: str, now: datetime) -> int:
    """Add the source ``spec`` (its URL not yet known); its id."""
    row = {"url": spec.url, "origin": origin, "created_at": now, **spec_columns(spec)}
    return int(conn.execute(SOURCES.insert().returning(T.id), row).scalar_one())


def known_urls(conn: Connection) -> dict[str, int]:
    """Source id by URL, including the URLs sources were permanently redirected away from."""
    known = {row.url: row.id for row in conn.execute(select(T.id, T.url))}
    for row in conn.execute(select(T.id, T.previous_urls)):
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


def save_update(conn: Connection, state: FeedState, change: FeedUpdate) -> None:
    """Write ``change`` onto source ``state.id``.

    A move to a URL another source already has is not applied (the two would collide); the
    redirect stays recorded instead.
    """
    values: dict[str, Any] = {
        "last_checked_at": change.checked_at,
        "next_check_at": change.next_check_at,
        "last_status": change.status.value,
        "enabled": change.enabled,
        "title": change.title,
        "etag": change.etag,
        "last_modified": change.last_modified,
        "error_count": change.error_count,
        "last_error": change.last_error,
        "retry_after_until": change.retry_after_until,
        "disabled_reason": change.disabled_reason,
        "redirect_url": change.redirect_url,
        "redirect_count": change.redirect_count,
        "ttl_s": change.ttl_s,
        "posts_per_week": change.posts_per_week,
        "lease_owner": None,
        "lease_until": None,
    }
    if change.status.succeeded:
        values["last_success_at"] = change.checked_at
    if change.url != state.url:
        taken = conn.execute(select(T.id).where(T.url == change.url)).first()
        if taken is None:
            previous = conn.execute(select(T.previous_urls).where(T.id == state.id)).scalar_one()
            values["url"] = change.url
            values["previous_urls"] = [*(previous or []), state.url]
        else:
            values["redirect_url"] = change.url
    conn.execute(update(SourceRow).where(T.id == state.id).values(**values))


def spec_columns(spec: SourceSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "categories": list(spec.categories),
        "interval_s": spec.interval_s,
        "comments": spec.comments,
        "max_body": spec.max_body,
    }


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
