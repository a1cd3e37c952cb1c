"""Health and counts of the store: per source and in total (``ingest stats``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import RowMapping, func, select

from ingest.errors import ErrorKind
from ingest.types import LeaseHolder
from storage.claims import database_now, lease_holders
from storage.engine import Database
from storage.migrate import current_revision
from storage.models import POSTS, SIGHTINGS, SOURCES
from storage.outbox import HookHealth, hook_health_in
from storage.sources import count_failing_in


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """One source as ``stats`` shows it; ``status`` is ``new`` before its first check."""

    id: int
    url: str
    name: str | None
    status: str
    enabled: bool
    last_checked_at: datetime | None
    next_check_at: datetime | None
    last_success_at: datetime | None
    error_count: int
    last_error: str | None
    last_error_kind: ErrorKind | None
    """``internal`` is a bug in feed-ingest."""
    disabled_reason: str | None
    retry_after_until: datetime | None
    posts: int
    filtered: int
    """Entries of its last document that the keep and block rules kept out."""
    lease_owner: str | None
    """The process checking it right now (a lease that has not expired), if any."""
    lease_until: datetime | None


@dataclass(frozen=True, slots=True)
class StoreStats:
    sources: list[SourceHealth]
    posts: int
    sightings: int
    schema_version: str | None
    leases: list[LeaseHolder]
    failing: int
    """Enabled sources whose last check failed (``storage.sources.FAILING``)."""
    hooks: list[HookHealth]
    """Every hook the outbox holds deliveries for, by name."""

    @property
    def disabled(self) -> int:
        return sum(1 for s in self.sources if not s.enabled)


def store_stats(store: Database) -> StoreStats:
    seen = (
        select(SIGHTINGS.c.source_id, func.count().label("posts"))
        .group_by(SIGHTINGS.c.source_id)
        .subquery()
    )
    query = (
        select(SOURCES, func.coalesce(seen.c.posts, 0).label("posts"))
        .outerjoin(seen, seen.c.source_id == SOURCES.c.id)
        .order_by(SOURCES.c.id)
    )
    holders = lease_holders(store)
    with store.read() as conn:
        now = database_now(conn)
        rows = conn.execute(query).mappings().all()
        posts = conn.execute(select(func.count()).select_from(POSTS)).scalar_one()
        sightings = conn.execute(select(func.count()).select_from(SIGHTINGS)).scalar_one()
        failing = count_failing_in(conn)
        revision = current_revision(conn)
        hooks = hook_health_in(conn)
    sources = [
        SourceHealth(
            id=row["id"],
            url=row["url"],
            name=row["name"] or row["title"],
            status=row["last_status"] or "new",
            enabled=row["enabled"],
            last_checked_at=row["last_checked_at"],
            next_check_at=row["next_check_at"],
            last_success_at=row["last_success_at"],
            error_count=row["error_count"],
            last_error=row["last_error"],
            last_error_kind=ErrorKind(kind) if (kind := row["last_error_kind"]) else None,
            disabled_reason=row["disabled_reason"],
            retry_after_until=row["retry_after_until"],
            posts=row["posts"],
            filtered=row["last_filtered"],
            lease_owner=row["lease_owner"] if _leased(row, now) else None,
            lease_until=row["lease_until"] if _leased(row, now) else None,
        )
        for row in rows
    ]
    return StoreStats(sources, posts, sightings, revision, holders, failing, hooks)


def _leased(row: RowMapping, now: datetime) -> bool:
    """Whether the source ``row`` is under a lease that has not expired."""
    return row["lease_owner"] is not None and row["lease_until"] >= now
