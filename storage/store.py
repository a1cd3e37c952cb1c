"""The store as the rest of feed-ingest sees it: one object, one contract.

``Store`` is the only way into ``storage`` from outside it (``storage/__init__.py`` exports it
with ``open_store`` and the result types); SQL and SQLAlchemy stay behind it. Each method hands
over to the module of ``storage`` that owns the table and the job (``sources``, ``claims``,
``apply``, ``entries``, ``search``, ``stats``), in the manner of lemon24/reader's
``StorageType``; ``outbox`` keeps the hook deliveries.

Contract, stated once for every method:

- **Transactions.** Each method is one transaction, unless its docstring says otherwise: it
  commits whole or, on any error, leaves the store as it was. Writes hold the write lock from
  their first statement (SQLite ``BEGIN IMMEDIATE``), so concurrent writers wait for the busy
  timeout rather than fail; reads are snapshots and never wait for writers (WAL).
- **Time.** Every ``datetime`` given is timezone-aware (a naive one is refused with
  ValueError: a bug, never a guess) and every one returned is UTC.
- **Errors.** A store that cannot be opened, migrated, read or written (a missing folder, a
  damaged file, a lost connection, a full disk, a constraint the database refuses) raises
  ``StoreError`` naming the store by its URL with the password hidden (``shown_url``).
  Anything else that escapes is a bug.
- **Threads and processes.** A ``Store`` may be used from several threads (its engine pools
  connections: each thread's transaction has a connection of its own), but feed-ingest writes
  from one thread (``ingest.pipeline.writer``), so SQLite never sees two writers of ours; only
  lease renewals take a connection of their own. Reads may come from any thread at any time:
  the daemon's HTTP threads read the posts of ``/feeds/...`` while the writer writes, each read
  a snapshot of committed data. Several processes,
  on one host or on many sharing PostgreSQL, coordinate through leases on sources (``claim_due``;
  DESIGN §7) and through upserts, never through locks held across transactions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime

from ingest.types import (
    Change,
    Check,
    Decider,
    Delivery,
    DeliveryResult,
    Due,
    DuplicateFinder,
    HookRouter,
    HubLink,
    HubMode,
    IdleHorizon,
    IdleMark,
    LeaseHolder,
    SourceSpec,
    SourcesPlanner,
    SourceState,
    StoredPost,
    StoredSource,
    Subscription,
)
from storage import apply, claims, entries, outbox, search, sources, stats, websub
from storage.engine import Database, migrate_database, open_database
from storage.entries import PostFilter
from storage.idle import clear_idle_mark, write_idle_mark
from storage.outbox import HookHealth
from storage.sources import ImportResult, Removal, SourceSync
from storage.stats import StoreStats


def open_store(url: str, *, migrate: bool = True, create: bool = True) -> Store:
    """The store at ``url``, migrated to the newest schema unless ``migrate`` is false.

    Raises StoreError with a reason a user can act on (bad URL, missing folder, not a database,
    another program's database, a schema written by a newer feed-ingest); NoStoreError when
    there is none yet and ``create`` is false (a command that only reads).
    """
    return Store(open_database(url, migrate=migrate, create=create))


class Store:
    """Sources, posts and sightings, with the contract of the module docstring."""

    def __init__(self, database: Database) -> None:
        self.database = database
        """The database itself: for ``storage``'s own modules, and tests that inspect rows."""

    @property
    def url(self) -> str:
        return self.database.url

    @property
    def shown_url(self) -> str:
        """The URL fit to print: password and secret parameters hidden."""
        return self.database.shown_url

    def close(self) -> None:
        """Close every pooled connection; the store is not used afterwards."""
        self.database.close()

    def migrate(self) -> tuple[str | None, str | None]:
        """Bring the schema to the newest revision; the revisions before and after (equal: no
        change). One transaction per migration."""
        return migrate_database(self.database)

    def ping(self) -> None:
        """Ask the database to answer; StoreError when it does not (health checks)."""
        with self.database.read() as conn:
            conn.exec_driver_sql("SELECT 1")

    # Sources ---------------------------------------------------------------------------

    def apply_sources(
        self, specs: Iterable[SourceSpec], *, origin: str, now: datetime
    ) -> list[int]:
        """Add the sources of ``specs`` or update their settings, never deleting; their ids.
        Idempotent; a URL a source was redirected away from updates that source."""
        return sources.apply_sources(self.database, specs, origin=origin, now=now)

    def load_states(self, ids: Sequence[int] | None = None) -> list[SourceState]:
        """The state of every source (or of ``ids``), by id."""
        return sources.load_states(self.database, ids)

    def list_sources(self) -> list[StoredSource]:
        """Every source, by id."""
        return sources.list_sources(self.database)

    def find_source(self, key: str, urls: Sequence[str] = ()) -> StoredSource | None:
        """The source whose id is ``key``, else whose URL or former URL is ``key`` or one of
        ``urls`` (the caller's canonical forms of ``key``); None if there is none."""
        return sources.find_source(self.database, key, urls)

    def sync_sources(
        self, specs: Sequence[SourceSpec], *, plan: SourcesPlanner, reason: str, now: datetime
    ) -> SourceSync:
        """Apply the config's sources as ``plan`` says: add, update, retire (disabled with
        ``reason``, posts kept) and revive; what was added, retired and revived."""
        return sources.sync_sources(self.database, specs, plan=plan, reason=reason, now=now)

    def add_source(
        self, spec: SourceSpec, *, origin: str, now: datetime, duplicate: DuplicateFinder
    ) -> tuple[StoredSource, bool]:
        """Add ``spec`` unless ``duplicate`` finds it stored; the source and whether it is
        new."""
        return sources.add_source(self.database, spec, origin=origin, now=now, duplicate=duplicate)

    def import_sources(
        self,
        specs: Sequence[SourceSpec],
        *,
        origin: str,
        now: datetime,
        duplicate: DuplicateFinder,
    ) -> ImportResult:
        """Add every source of ``specs`` that ``duplicate`` does not find stored, or none on
        error; skip the others, saying why."""
        return sources.import_sources(
            self.database, specs, origin=origin, now=now, duplicate=duplicate
        )

    def update_source(
        self, source_id: int, given: SourceSpec, clear: Collection[str] = ()
    ) -> StoredSource | None:
        """Replace the settings ``given`` sets (name, categories, interval, comments,
        max_body, keep and block rules) of a source, the lists ``clear`` names (``keep``,
        ``block``) emptied first; None if there is none."""
        return sources.update_source(self.database, source_id, given, clear)

    def set_enabled(
        self, source_id: int, *, enabled: bool, reason: str | None = None
    ) -> StoredSource | None:
        """Poll a source again, or stop polling it for ``reason``; None if there is none.
        Enabling a retired source hands it from the config to the user (origin ``cli``)."""
        return sources.set_enabled(self.database, source_id, enabled=enabled, reason=reason)

    def reset_errors(self, source_id: int) -> StoredSource | None:
        """Forget a source's failures, backoff, Retry-After and 410 Gone: due now; None if
        there is none."""
        return sources.reset_errors(self.database, source_id)

    def remove_source(self, source_id: int, *, purge: bool) -> Removal | None:
        """Delete a source and its sightings (None if there is none); with ``purge`` also the
        posts no other source has seen."""
        return sources.remove_source(self.database, source_id, purge=purge)

    def count_sources(self) -> int:
        return sources.count_sources(self.database)

    def count_failing(self) -> int:
        """Enabled sources whose last check failed."""
        return sources.count_failing(self.database)

    # Leases (DESIGN §7) ------------------------------------------------------------------

    def claim_due(
        self,
        *,
        owner: str,
        due: Due,
        lease_s: float,
        limit: int,
        skip: Collection[int] = (),
        takeover: Collection[str] = (),
    ) -> list[SourceState]:
        """Lease to ``owner`` up to ``limit`` sources ``due`` wants that nobody holds (or whose
        holder is in ``takeover``, owners known dead), besides ``skip``; least recently due
        first. Lease times are the database's clock on PostgreSQL."""
        return claims.claim_due(
            self.database,
            owner=owner,
            due=due,
            lease_s=lease_s,
            limit=limit,
            skip=skip,
            takeover=takeover,
        )

    def renew(self, ids: Collection[int], *, owner: str, lease_s: float) -> set[int]:
        """Extend ``owner``'s leases on ``ids`` by ``lease_s``; the ids it still held."""
        return claims.renew(self.database, ids, owner=owner, lease_s=lease_s)

    def release(self, ids: Collection[int], *, owner: str) -> None:
        """End ``owner``'s leases on ``ids``: work that will not be done."""
        claims.release(self.database, ids, owner=owner)

    def lease_holders(self, *, due: Due | None = None) -> list[LeaseHolder]:
        """Who holds unexpired leases (on sources ``due`` wants, if given), most first."""
        return claims.lease_holders(self.database, due=due)

    def count_wanted(self, due: Due) -> int:
        """How many sources ``due`` wants, leased or not."""
        return claims.count_wanted(self.database, due)

    # Checks --------------------------------------------------------------------------------

    def record_checks(
        self, checks: Sequence[Check], *, decide: Decider, route: HookRouter | None = None
    ) -> list[Counter[Change] | None]:
        """Store each check's posts, sightings and source state, all in one transaction: what
        ``decide`` said of each check's posts, or None for a check dropped because its owner
        no longer holds the source's lease (fenced, DESIGN §7). With ``route``, the hook
        deliveries of new and revised posts are queued in the same transaction (the outbox)."""
        return apply.record_checks(self.database, checks, decide=decide, route=route)

    # Hook deliveries (the outbox) ------------------------------------------------------------

    def claim_deliveries(
        self, *, owner: str, room: Mapping[str, int], claim_s: float
    ) -> list[Delivery]:
        """Claim for ``owner`` due deliveries, at most ``room[hook]`` of each hook named, for
        ``claim_s`` seconds; the posts as stored now. Replicas claim different rows."""
        return outbox.claim_deliveries(self.database, owner=owner, room=room, claim_s=claim_s)

    def settle_deliveries(self, results: Sequence[DeliveryResult], *, owner: str) -> None:
        """Record attempts: delivered, to retry after a wait, or given up; only for the rows
        ``owner`` still holds."""
        outbox.settle_deliveries(self.database, results, owner=owner)

    def next_delivery_due(self, hooks: Sequence[str]) -> float | None:
        """Seconds until the next pending delivery of ``hooks`` is due; None if none waits."""
        return outbox.next_due(self.database, hooks)

    def mark_idle(
        self,
        fingerprint: str,
        *,
        hooks: Sequence[str],
        until: IdleHorizon,
        specs: Sequence[SourceSpec],
        plan: SourcesPlanner,
    ) -> IdleMark | None:
        """Leave the idle mark of a pass run with settings ``fingerprint`` (``storage.idle``):
        ``until`` tells, from the sources and the first pending delivery of ``hooks``, when
        work comes due. No mark while the config's sources ``specs`` are not what ``plan``
        makes of the store (a change since the pass applied them), and none on PostgreSQL;
        None then."""
        if not self.database.is_sqlite:
            return None
        with self.database.write() as conn:
            if not sources.config_applied(conn, specs, plan):
                clear_idle_mark(conn)
                return None
            pending = outbox.pending_in(conn)
            mark = IdleMark(
                fingerprint=fingerprint,
                until=until(sources.states(conn), outbox.first_due(conn, hooks)),
                deliveries_pending=sum(pending.get(hook, 0) for hook in hooks),
            )
            write_idle_mark(conn, mark)
        return mark

    def pending_deliveries(self) -> dict[str, int]:
        """Deliveries waiting, by hook."""
        return outbox.pending_counts(self.database)

    def hook_health(self) -> list[HookHealth]:
        """Every hook's deliveries: pending, delivered, given up, the latest error."""
        return outbox.hook_health(self.database)

    # WebSub subscriptions (storage.websub) -------------------------------------------------

    def advertise_hub(
        self, source_id: int, link: HubLink, *, key: str, secret: str, lease_s: int, now: datetime
    ) -> bool:
        """Record the hub source ``source_id`` advertises; whether that changed anything (a new
        hub or topic starts its subscription over, with ``secret``)."""
        return websub.advertise(
            self.database, source_id, link, key=key, secret=secret, lease_s=lease_s, now=now
        )

    def subscriptions(self) -> list[Subscription]:
        """Every WebSub subscription, by id."""
        return websub.subscriptions(self.database)

    def subscription(self, key: str) -> Subscription | None:
        """The subscription whose callback URL ends in ``key``, if any."""
        return websub.by_key(self.database, key)

    def mark_requested(
        self, sub: Subscription, mode: HubMode, *, lease_s: int, now: datetime
    ) -> bool:
        """Note that ``mode`` is being asked of the hub; False when the row changed since
        ``sub`` was read (another process is asking)."""
        return websub.mark_requested(self.database, sub, mode, lease_s=lease_s, now=now)

    def request_failed(self, sub_id: int, reason: str) -> None:
        """The hub refused the request or could not be reached."""
        websub.request_failed(self.database, sub_id, reason)

    def confirm_subscription(
        self, sub: Subscription, *, lease_until: datetime | None, now: datetime
    ) -> bool:
        """The hub verified the request ``sub`` awaits; False when the row changed since."""
        return websub.confirm(self.database, sub, lease_until=lease_until, now=now)

    def deny_subscription(self, sub_id: int, reason: str, *, now: datetime) -> None:
        """The hub denied the subscription: push stops, its source is due at once."""
        websub.deny(self.database, sub_id, reason, now=now)

    def make_due(self, source_id: int, now: datetime) -> None:
        """Make a source due by ``now`` at the latest (pushed content it could not take)."""
        websub.make_due(self.database, source_id, now)

    def forget_subscriptions(self, sub_ids: Sequence[int]) -> None:
        """Delete subscriptions no longer wanted."""
        websub.forget(self.database, sub_ids)

    # Posts -------------------------------------------------------------------------------

    def list_posts(
        self, *, limit: int | None = None, where: PostFilter | None = None
    ) -> list[StoredPost]:
        """Posts matching ``where``, newest first by publish date, ties by id."""
        return entries.list_posts(self.database, limit=limit, where=where)

    def get_post(self, post_id: int) -> StoredPost | None:
        return entries.get_post(self.database, post_id)

    def iter_posts(self, *, since: datetime | None = None) -> Iterator[StoredPost]:
        """Every post (published at or after ``since``), by id, streamed from one read
        transaction that lasts while the iterator is consumed."""
        return entries.iter_posts(self.database, since=since)

    def search_posts(self, query: str, *, limit: int = 20) -> list[StoredPost]:
        """Posts holding every term of ``query``, best first. Indexes the search backlog first
        (its own write transactions), so every stored post is found."""
        return search.search_posts(self.database, query, limit=limit)

    def index_backlog(self, *, most: int | None = None) -> int:
        """Index up to ``most`` posts of the search backlog (all when None); how many. One
        write transaction per batch of ``storage.search.INDEX_BATCH``."""
        return search.index_backlog(self.database, most=most)

    def backlog_size(self) -> int:
        """Posts waiting to be indexed."""
        return search.backlog_size(self.database)

    # Health ------------------------------------------------------------------------------

    def stats(self) -> StoreStats:
        """Every source's health and the store's totals (two read transactions: the leases,
        then the rest)."""
        return stats.store_stats(self.database)
