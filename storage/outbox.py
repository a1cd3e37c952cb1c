"""The outbox of hook deliveries (``hook_deliveries``): queued with the posts, claimed, settled.

Contract:

- ``enqueue`` runs inside the transaction that stores a check (``storage.apply``): the
  caller's ``HookRouter`` names the hooks that want each new or revised post, and one row per
  (post, revision, hook) is added, unique, so storing the same post again, or two replicas
  storing it at once, queues it once. A delivery therefore exists if and only if the post it
  announces was committed: a crash loses none and invents none.
- ``claim_deliveries`` hands ``owner`` due rows of the hooks it names, at most as many per hook
  as it asks for, in one write transaction; on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so
  replicas claiming at once take different rows; SQLite's ``BEGIN IMMEDIATE`` serializes
  claimers. A claim moves the row's ``next_attempt_at`` to when the claim expires: a process
  that dies while delivering leaves the row to be claimed again then (at least once).
- ``settle_deliveries`` records attempts: done, or failed with the next attempt or given up,
  for rows ``owner`` still holds; a row whose claim expired and was taken by another process
  is left to that one.
- Due times and claim expiries are the database's clock on PostgreSQL
  (``storage.claims.database_now``), like leases on sources.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select, update

from ingest.types import Change, Delivery, DeliveryResult, EntryIntent, HookRouter, SourceState
from storage.bulk import Bulk
from storage.claims import database_now
from storage.engine import Database
from storage.entries import select_posts, stored_post
from storage.models import DELIVERIES, POSTS

PENDING, DONE, FAILED = "pending", "done", "failed"
"""The values of ``hook_deliveries.status``."""
_D = DELIVERIES.c

_REVISIONS = "SELECT id, revision FROM posts WHERE id IN (?*)"
_ENQUEUE = (
    "INSERT INTO hook_deliveries (post_id, revision, hook, event, status, attempts, "
    "next_attempt_at, created_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?) "
    "ON CONFLICT (post_id, revision, hook) DO NOTHING"
)


def enqueue(
    bulk: Bulk,
    source: SourceState,
    intents: Sequence[EntryIntent],
    post_ids: Mapping[str, int],
    *,
    route: HookRouter,
    now: datetime,
) -> None:
    """Queue a delivery for every hook ``route`` names for each new or revised post of
    ``intents`` (``post_ids``: hash -> id of every post written), in the caller's transaction."""
    wanted: list[tuple[int, Change, str]] = []
    for intent in intents:
        if intent.change is Change.NEW or (intent.change is Change.UPDATED and intent.revise):
            post_id = post_ids[intent.post.content_hash]
            wanted.extend(
                (post_id, intent.change, hook) for hook in route(intent.change, intent.post, source)
            )
    if not wanted:
        return
    revisions: dict[int, int] = dict(
        bulk.select_in(_REVISIONS, sorted({post_id for post_id, _, _ in wanted}))  # type: ignore[arg-type]
    )
    at = bulk.time(now)
    bulk.many(
        _ENQUEUE,
        [(pid, revisions[pid], hook, event.value, at, at) for pid, event, hook in wanted],
    )


def claim_deliveries(
    store: Database, *, owner: str, room: Mapping[str, int], claim_s: float
) -> list[Delivery]:
    """Claim for ``owner`` due pending deliveries, at most ``room[hook]`` of each hook named,
    oldest due first; held for ``claim_s`` seconds."""
    with store.write() as conn:
        now = database_now(conn)
        claimed: list[tuple[int, str, str, int, int, int, str | None]] = []
        for hook, most in sorted(room.items()):
            if most <= 0:
                continue
            query = (
                select(
                    _D.id, _D.hook, _D.event, _D.revision, _D.attempts, _D.post_id, _D.claimed_by
                )
                .where(_D.status == PENDING, _D.hook == hook, _D.next_attempt_at <= now)
                .order_by(_D.next_attempt_at, _D.id)
                .limit(most)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            claimed.extend(tuple(row) for row in conn.execute(query))
        if not claimed:
            return []
        conn.execute(
            update(DELIVERIES)
            .where(_D.id.in_([row[0] for row in claimed]))
            .values(claimed_by=owner, next_attempt_at=now + timedelta(seconds=claim_s))
        )
        posts = {
            row["id"]: stored_post(row)
            for row in conn.execute(
                select_posts().where(POSTS.c.id.in_({row[5] for row in claimed}))
            ).mappings()
        }
    return [
        Delivery(id, hook, Change(event), revision, attempts, posts[post_id], before)
        for id, hook, event, revision, attempts, post_id, before in claimed
    ]


def settle_deliveries(store: Database, results: Sequence[DeliveryResult], *, owner: str) -> None:
    """Record how the attempts of ``results`` went, for the rows ``owner`` still holds."""
    if not results:
        return
    with store.write() as conn:
        now = database_now(conn)
        for result in results:
            conn.execute(
                update(DELIVERIES)
                .where(_D.id == result.id, _D.claimed_by == owner)
                .values(_settled(result, now))
            )


def _settled(result: DeliveryResult, now: datetime) -> dict[str, object]:
    values: dict[str, object] = {
        "attempts": _D.attempts + 1,
        "claimed_by": None,
        "last_attempt_at": now,
    }
    if result.error is None:
        return values | {"status": DONE, "delivered_at": now}
    values["last_error"] = result.error
    if result.retry_in is None:
        return values | {"status": FAILED}
    return values | {"next_attempt_at": now + timedelta(seconds=result.retry_in)}


def next_due(store: Database, hooks: Sequence[str]) -> float | None:
    """Seconds until the next pending delivery of ``hooks`` is due (0 or less: due now, or
    claimed by a process whose claim has not expired); None when there is none."""
    if not hooks:
        return None
    with store.read() as conn:
        now = database_now(conn)
        earliest = first_due(conn, hooks)
    return None if earliest is None else (earliest - now).total_seconds()


def first_due(conn: Connection, hooks: Sequence[str]) -> datetime | None:
    """When the first pending delivery of ``hooks`` is due, in ``conn``'s transaction."""
    if not hooks:
        return None
    earliest: datetime | None = conn.execute(
        select(func.min(_D.next_attempt_at)).where(_D.status == PENDING, _D.hook.in_(list(hooks)))
    ).scalar_one()
    return earliest


@dataclass(frozen=True, slots=True)
class HookHealth:
    """One hook's deliveries as ``ingest stats`` shows them (every hook the outbox names, in
    the config or not any more)."""

    hook: str
    pending: int
    delivered: int
    failed: int
    """Given up after ``[delivery] max_attempts``."""
    last_error: str | None
    """The latest error of a delivery not delivered (pending or given up)."""
    last_error_at: datetime | None
    next_attempt_at: datetime | None
    """When the next pending delivery is due."""


def hook_health_in(conn: Connection) -> list[HookHealth]:
    """Every hook's delivery counts and latest error, by name, in ``conn``'s transaction."""
    counts: dict[str, dict[str, int]] = {}
    due: dict[str, datetime] = {}
    query = select(_D.hook, _D.status, func.count(), func.min(_D.next_attempt_at)).group_by(
        _D.hook, _D.status
    )
    for hook, status, count, earliest in conn.execute(query):
        counts.setdefault(hook, {})[status] = count
        if status == PENDING:
            due[hook] = earliest
    errors: dict[str, tuple[str, datetime]] = {}
    for hook in counts:
        latest = conn.execute(
            select(_D.last_error, _D.last_attempt_at)
            .where(_D.hook == hook, _D.status != DONE, _D.last_error.is_not(None))
            .order_by(_D.last_attempt_at.desc(), _D.id.desc())
            .limit(1)
        ).first()
        if latest is not None:
            errors[hook] = (latest[0], latest[1])
    return [
        HookHealth(
            hook=hook,
            pending=counts[hook].get(PENDING, 0),
            delivered=counts[hook].get(DONE, 0),
            failed=counts[hook].get(FAILED, 0),
            last_error=errors.get(hook, (None, None))[0],
            last_error_at=errors.get(hook, (None, None))[1],
            next_attempt_at=due.get(hook),
        )
        for hook in sorted(counts)
    ]


def pending_counts(store: Database) -> dict[str, int]:
    """Pending deliveries by hook (an index scan: the daemon asks at every tick)."""
    with store.read() as conn:
        return pending_in(conn)


def pending_in(conn: Connection) -> dict[str, int]:
    """``pending_counts`` in ``conn``'s transaction."""
    query = select(_D.hook, func.count()).where(_D.status == PENDING).group_by(_D.hook)
    return {str(hook): int(count) for hook, count in conn.execute(query)}


def hook_health(store: Database) -> list[HookHealth]:
    with store.read() as conn:
        return hook_health_in(conn)
