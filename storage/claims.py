"""Leases on sources: who processes which source now (DESIGN §7).

Contract:

- ``claim_due`` leases to ``owner`` at most ``limit`` sources that a pass wants (``Due``; the
  rule is ``scheduler.policy.is_due``, written here as the query's WHERE clause, ``wanted``, so
  that a limit means something; ``tests/test_claims.py`` checks the two agree) and that
  nobody holds: no lease, an expired one, or one whose owner the caller knows is dead
  (``takeover``). One write transaction; on PostgreSQL the rows are taken with
  ``FOR UPDATE SKIP LOCKED``, so replicas claiming at once pass each other instead of queueing
  or taking the same source; SQLite's ``BEGIN IMMEDIATE`` serializes claimers.
- Lease times come from the database's clock on PostgreSQL (``now()``), so replicas on hosts
  whose clocks disagree still agree on when a lease ends; SQLite has one host, and its clock.
- ``renew`` extends the owner's leases that it still holds and says which those are.
- Saving a check (``storage.apply.record_checks``) ends the lease, and is fenced: it happens only
  while the saver still holds the lease.
- ``release`` ends leases on work that will not be done (shutdown).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select, update

from ingest.types import Due, LeaseHolder, SourceState
from storage.engine import Database
from storage.models import SOURCES, T
from storage.sources import state_from_row
from storage.websub import PUSH_UNTIL


def claim_due(
    store: Database,
    *,
    owner: str,
    due: Due,
    lease_s: float,
    limit: int,
    skip: Collection[int] = (),
    takeover: Collection[str] = (),
) -> list[SourceState]:
    """Lease and return up to ``limit`` wanted, unheld sources, least recently due first.

    ``skip``: ids the caller does not want again; ``takeover``: owners known to be dead, whose
    leases count as free.
    """
    with store.write() as conn:
        now = database_now(conn)
        free = or_(T.lease_owner.is_(None), T.lease_until < now)
        if takeover:
            free = or_(free, T.lease_owner.in_(list(takeover)))
        query = (
            select(SOURCES, PUSH_UNTIL)
            .where(wanted(due), free)
            .order_by(T.next_check_at.asc().nulls_first(), T.id)
            .limit(limit)
        )
        if skip:
            query = query.where(T.id.not_in(list(skip)))
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(of=SOURCES, skip_locked=True)
        states = [state_from_row(row) for row in conn.execute(query).mappings()]
        if states:
            conn.execute(
                update(SOURCES)
                .where(T.id.in_([state.id for state in states]))
                .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease_s))
            )
    return states


def renew(store: Database, ids: Collection[int], *, owner: str, lease_s: float) -> set[int]:
    """Extend ``owner``'s leases on ``ids`` by ``lease_s`` from now; the ids it still held."""
    if not ids:
        return set()
    with store.write() as conn:
        until = database_now(conn) + timedelta(seconds=lease_s)
        held = conn.execute(
            update(SOURCES)
            .where(T.id.in_(list(ids)), T.lease_owner == owner)
            .values(lease_until=until)
            .returning(T.id)
        )
        return set(held.scalars())


def release(store: Database, ids: Collection[int], *, owner: str) -> None:
    """End ``owner``'s leases on ``ids`` (claimed, then left unprocessed)."""
    if not ids:
        return
    with store.write() as conn:
        conn.execute(
            update(SOURCES)
            .where(T.id.in_(list(ids)), T.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )


def lease_holders(store: Database, *, due: Due | None = None) -> list[LeaseHolder]:
    """Who holds unexpired leases (on sources ``due`` wants, if given), most sources first."""
    with store.read() as conn:
        now = database_now(conn)
        query = (
            select(T.lease_owner, func.count().label("sources"), func.max(T.lease_until))
            .where(T.lease_owner.is_not(None), T.lease_until >= now)
            .group_by(T.lease_owner)
            .order_by(func.count().desc(), T.lease_owner)
        )
        if due is not None:
            query = query.where(wanted(due))
        return [LeaseHolder(owner, count, until) for owner, count, until in conn.execute(query)]


def wanted(due: Due) -> ColumnElement[bool]:
    """``scheduler.policy.is_due`` over the sources table, plus the pass's ``fresh_since``
    and ``only``."""
    conditions = [
        T.enabled.is_(True),
        or_(T.retry_after_until.is_(None), T.retry_after_until <= due.now),
    ]
    if due.only is not None:
        conditions.append(T.id.in_(list(due.only)))
    if not due.force:
        conditions.append(or_(T.next_check_at.is_(None), T.next_check_at <= due.now))
    if due.fresh_since is not None:
        conditions.append(or_(T.last_checked_at.is_(None), T.last_checked_at < due.fresh_since))
    return and_(*conditions)


def database_now(conn: Connection) -> datetime:
    """The time leases are measured by: PostgreSQL's clock, or this host's for SQLite."""
    if conn.dialect.name == "postgresql":
        moment: datetime = conn.execute(select(func.now())).scalar_one()
        return moment.astimezone(UTC)
    return datetime.now(UTC)


def count_wanted(store: Database, due: Due) -> int:
    """How many sources ``due`` wants, leased or not."""
    with store.read() as conn:
        query = select(func.count()).select_from(SOURCES).where(wanted(due))
        return int(conn.execute(query).scalar_one())
