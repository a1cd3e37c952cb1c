"""Claiming due sources with a lease, so no source is processed twice at the same time.

Contract: ``claim_due`` returns the sources that are due (``scheduler.policy.is_due`` decides)
and not leased by anyone else, and leases them to ``owner`` until ``now + lease_s``, in one write
transaction. Saving the source's check (``storage.feeds.save_updates``) ends the lease. A process
that dies leaves leases that simply expire; ``ingest run`` beside a running daemon, or several
daemons on one PostgreSQL database, never fetch the same source at once (DESIGN §7). On
PostgreSQL the candidate rows are locked with ``FOR UPDATE SKIP LOCKED``, so concurrent claimers
pass each other instead of queueing; SQLite's ``BEGIN IMMEDIATE`` serializes them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime, timedelta

from sqlalchemy import Connection, or_, select, update

from ingest.types import FeedState
from scheduler.policy import is_due
from storage.engine import Store
from storage.feeds import SOURCES, T, state_from_row


def claim_due(
    store: Store,
    *,
    owner: str,
    now: datetime,
    lease_for: Callable[[int], float],
    force: bool = False,
    skip: Collection[int] = (),
) -> list[FeedState]:
    """Lease and return the due sources (``force``: every enabled one), minus ids in ``skip``.

    ``lease_for(count)`` says how many seconds a claim of ``count`` sources is held.
    """
    free = or_(T.lease_until.is_(None), T.lease_until < now)
    query = select(SOURCES).where(T.enabled.is_(True), free).order_by(T.next_check_at, T.id)
    if not force:  # an index-friendly first cut; is_due below has the last word
        query = query.where(or_(T.next_check_at.is_(None), T.next_check_at <= now))
    if store.engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    with store.write() as conn:
        states = [
            state
            for row in conn.execute(query).mappings()
            if (state := state_from_row(row)).id not in skip and is_due(state, now, force=force)
        ]
        until = now + timedelta(seconds=lease_for(len(states)))
        _set_lease(conn, [state.id for state in states], owner=owner, until=until)
    return states


def release(store: Store, ids: Collection[int], *, owner: str) -> None:
    """End ``owner``'s leases on ``ids`` (claimed, then left unprocessed at shutdown)."""
    with store.write() as conn:
        _set_lease(conn, list(ids), owner=None, until=None, held_by=owner)


def _set_lease(
    conn: Connection,
    ids: list[int],
    *,
    owner: str | None,
    until: datetime | None,
    held_by: str | None = None,
) -> None:
    for start in range(0, len(ids), 500):
        query = update(SOURCES).where(T.id.in_(ids[start : start + 500]))
        if held_by is not None:
            query = query.where(T.lease_owner == held_by)
        conn.execute(query.values(lease_owner=owner, lease_until=until))
