"""The ``websub_subscriptions`` table: WebSub push subscriptions and where each stands.

Contract: each function is one transaction. Whether to ask a hub, and whether a verification is
one we asked for, are the caller's rules (``ingest.websub.rules``); the writes here are fenced
so that two replicas acting on the same row at once do not both act: ``mark_requested`` and
``confirm`` succeed only while the row still is as the caller read it (its ``requested_at``).

A push subscription changes its source's polling (``scheduler.policy.with_push``): the lease
end of an active one is read with the source's state (``PUSH_UNTIL``); when push stops (a
denial, an unsubscription) the source is made due at once, so polling takes over without
waiting out the long interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Connection,
    RowMapping,
    and_,
    delete,
    false,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from ingest.types import HubLink, HubMode, Subscription, SubscriptionState
from storage.engine import Database
from storage.models import SOURCES, SUBSCRIPTIONS, T

S = SUBSCRIPTIONS.c

PUSH_UNTIL = (
    select(S.lease_until)
    .where(S.source_id == T.id, S.state == SubscriptionState.ACTIVE.value)
    .scalar_subquery()
    .label("push_until")
)
"""The lease end of a source's active subscription (NULL: none), as a column of a query over
``sources``: ``SourceState.push_until``."""


def advertise(
    store: Database,
    source_id: int,
    link: HubLink,
    *,
    key: str,
    secret: str,
    lease_s: int,
    now: datetime,
) -> bool:
    """Record that source ``source_id`` advertises ``link``; whether anything changed.

    A new hub or topic starts the subscription over (``pending``, with ``secret``, nothing
    asked yet); the same one again changes nothing. ``key`` names a new row's callback.
    """
    with store.write() as conn:
        row = conn.execute(select(S.hub, S.topic).where(S.source_id == source_id)).first()
        if row is None:
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            added = conn.execute(
                insert(SUBSCRIPTIONS)
                .values(
                    source_id=source_id,
                    hub=link.hub,
                    topic=link.topic,
                    callback_key=key,
                    secret=secret,
                    state=SubscriptionState.PENDING.value,
                    lease_s=lease_s,
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=["source_id"])
            )
            return bool(added.rowcount)
        if (row.hub, row.topic) == (link.hub, link.topic):
            return False
        conn.execute(
            update(SUBSCRIPTIONS)
            .where(S.source_id == source_id)
            .values(
                hub=link.hub,
                topic=link.topic,
                secret=secret,
                state=SubscriptionState.PENDING.value,
                requested=None,
                requested_at=None,
                lease_until=None,
                answered_at=None,
                last_error=None,
            )
        )
        _due_now(conn, source_id, now)
        return True


def subscriptions(store: Database) -> list[Subscription]:
    """Every subscription, by id."""
    with store.read() as conn:
        return [_subscription(row) for row in conn.execute(_SELECT.order_by(S.id)).mappings()]


def by_key(store: Database, key: str) -> Subscription | None:
    """The subscription whose callback ends in ``key``, if any."""
    with store.read() as conn:
        row = conn.execute(_SELECT.where(S.callback_key == key)).mappings().first()
        return _subscription(row) if row else None


def mark_requested(
    store: Database, sub: Subscription, mode: HubMode, *, lease_s: int, now: datetime
) -> bool:
    """Note that ``mode`` is being asked of ``sub``'s hub now, before asking it (a hub may
    verify before it answers); False when another process changed the row since it was read."""
    with store.write() as conn:
        changed = conn.execute(
            update(SUBSCRIPTIONS)
            .where(S.id == sub.id, _unchanged(sub))
            .values(requested=mode.value, requested_at=now, lease_s=lease_s)
        )
        return bool(changed.rowcount)


def request_failed(store: Database, sub_id: int, reason: str) -> None:
    """The hub refused the request or could not be reached: nothing is awaited any more."""
    with store.write() as conn:
        conn.execute(
            update(SUBSCRIPTIONS).where(S.id == sub_id).values(requested=None, last_error=reason)
        )


def confirm(
    store: Database, sub: Subscription, *, lease_until: datetime | None, now: datetime
) -> bool:
    """The hub verified the request ``sub`` awaits: active until ``lease_until`` (subscribe), or
    unsubscribed, the source made due at once. False when that request is no longer awaited
    (answered already, or another one sent since ``sub`` was read)."""
    if sub.requested is None:
        return False
    subscribed = sub.requested is HubMode.SUBSCRIBE
    state = SubscriptionState.ACTIVE if subscribed else SubscriptionState.UNSUBSCRIBED
    with store.write() as conn:
        changed = conn.execute(
            update(SUBSCRIPTIONS)
            .where(S.id == sub.id, S.requested == sub.requested.value, _unchanged(sub))
            .values(
                state=state.value,
                requested=None,
                lease_until=lease_until if subscribed else None,
                answered_at=now,
                last_error=None,
            )
        )
        if changed.rowcount and not subscribed and sub.source_id is not None:
            _due_now(conn, sub.source_id, now)
        return bool(changed.rowcount)


def deny(store: Database, sub_id: int, reason: str, *, now: datetime) -> None:
    """The hub denied (or ended) the subscription: push stops, the source is due at once."""
    with store.write() as conn:
        conn.execute(
            update(SUBSCRIPTIONS)
            .where(S.id == sub_id)
            .values(
                state=SubscriptionState.DENIED.value,
                requested=None,
                lease_until=None,
                answered_at=now,
                last_error=reason,
            )
        )
        source_id = conn.execute(select(S.source_id).where(S.id == sub_id)).scalar()
        if source_id is not None:
            _due_now(conn, source_id, now)


def forget(store: Database, sub_ids: Sequence[int]) -> None:
    """Delete subscriptions no longer wanted (their source removed, push ended)."""
    if sub_ids:
        with store.write() as conn:
            conn.execute(delete(SUBSCRIPTIONS).where(S.id.in_(list(sub_ids))))


def make_due(store: Database, source_id: int, now: datetime) -> None:
    """Make source ``source_id`` due by ``now`` at the latest."""
    with store.write() as conn:
        _due_now(conn, source_id, now)


def _due_now(conn: Connection, source_id: int, now: datetime) -> None:
    """Make the source due by ``now`` at the latest: push for it has stopped."""
    conn.execute(
        update(SOURCES).where(T.id == source_id, T.next_check_at > now).values(next_check_at=now)
    )


def _unchanged(sub: Subscription) -> ColumnElement[bool]:
    """The row is still as ``sub`` was read: the same request, sent at the same time."""
    if sub.requested_at is None:
        return and_(S.requested_at.is_(None), S.hub == sub.hub, S.topic == sub.topic)
    return and_(S.requested_at == sub.requested_at, S.hub == sub.hub, S.topic == sub.topic)


_SELECT = select(
    SUBSCRIPTIONS,
    func.coalesce(select(T.enabled).where(T.id == S.source_id).scalar_subquery(), false()).label(
        "source_enabled"
    ),
)


def _subscription(row: RowMapping) -> Subscription:
    return Subscription(
        id=row["id"],
        source_id=row["source_id"],
        hub=row["hub"],
        topic=row["topic"],
        key=row["callback_key"],
        secret=row["secret"],
        state=SubscriptionState(row["state"]),
        requested=HubMode(row["requested"]) if row["requested"] else None,
        requested_at=row["requested_at"],
        lease_s=row["lease_s"],
        lease_until=row["lease_until"],
        answered_at=row["answered_at"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        source_enabled=bool(row["source_enabled"]) and row["source_id"] is not None,
    )
