"""The path of one source, the single one ``ingest run`` and every tick of ``ingest serve`` take.

::

    claim      scheduler/driver.py ─► Pass.claim ─► Store.claim_due       leased, in batches
      │
    fetch      Pass._check ─► ingest/pipeline/acquire.py ─► ingest/fetch/client.py (network.py,
      │          body.py, classify.py) or ingest/fetch/local.py
      │          ─► Fetched | NotModified | Gone | RetryLater | Failed
    digest     (acquire.py) ingest/pipeline/workers.py ─► ingest/digest/document.py
      │          (parse.py, sanitize.py, normalize.py), in worker processes ─► Digest of posts
    decide     Pass._decide ─► scheduler/policy.py                          ─► SourceUpdate
      │
    write      ingest/pipeline/writer.py ─► Store.record_checks with ingest/identity.py's
      │          ``decide``: posts, sightings, the source's state; one transaction, fenced
      ▼          by the lease
    outcome    SourceOutcome: logged here, counted by ingest/observe/metrics.py, summed by
               the driver into the RunSummary

In this file: ``Pass.claim``; then ``process`` and ``_process``, which are the path in a few
lines (check, decide, write, outcome); then the steps they call, in that order: ``_check``
(fetch and digest), ``_decide``, and ``_record_bug`` for a bug met on the way.

Concurrency: fetches run on the event loop, at most ``[fetch] concurrency`` sources at once; the
CPU-bound digest runs in worker processes when a pass is large enough to pay for them (else in a
thread; ``ingest.pipeline.workers``); store writes go through one writer thread with group
commit (``ingest.pipeline.writer``), so SQLite never sees two writers from us; lease renewals
take a connection of their own.

Each source's failure is a value here (``ingest.types.FetchResult``), recorded on the source
with its kind and reported as its outcome; the rest of the pass goes on. An unexpected exception
is a bug in feed-ingest: logged with its traceback, recorded with the kind ``internal`` (the
source backs off all the same) and reported with the status ``bug``, never as the feed's fault.
A store that fails (``StoreError``) is recorded as such (kind ``store``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from ingest.config import Settings
from ingest.errors import ErrorKind, SourceError, StoreError
from ingest.hooks import router
from ingest.pipeline.workers import Digester
from ingest.pipeline.writer import StoreWriter
from ingest.sources import plan_config
from ingest.types import (
    Change,
    Check,
    Digest,
    Due,
    Failed,
    Failure,
    Fetched,
    FetchResult,
    LeaseHolder,
    SourceOutcome,
    SourceSpec,
    SourcesPlan,
    SourcesPlanner,
    SourceState,
    SourceUpdate,
    StoredSource,
)
from ingest.urls import redacted
from ingest.websub.rules import advertised
from scheduler.lease import is_gone, renew_every, this_process
from scheduler.policy import after_failure, after_success
from storage import SourceSync, Store

if TYPE_CHECKING:  # imported on first use: a pass with nothing due loads no HTTP client, no parser
    from ingest.fetch.client import Fetcher

log = structlog.get_logger("ingest.pipeline.runner")
T = TypeVar("T")

POOL_THRESHOLD = 8
"""Sources in a pass from which digest moves to worker processes (starting them costs a
fraction of a second, once)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


BUILTIN_RETIRED = (
    "the built-in demo source, left out once the store has sources of its own; its posts are kept"
)


def sync_config_sources(store: Store, settings: Settings, now: datetime) -> SourceSync:
    """Apply the config's sources to the store (``ingest.sources.plan_config``): added or
    updated; those it stopped listing retired (not polled, posts kept), those it lists again
    polled again. Each retirement and revival is logged, a retirement as a warning."""
    where = settings.origins["sources"]
    reason = (
        BUILTIN_RETIRED
        if where == "default"
        else f"no longer in the config ({where.removeprefix('env ')}); its posts are kept"
    )
    plan = config_planner(settings)
    done = store.sync_sources(settings.sources, plan=plan, reason=reason, now=now)
    for source in done.retired:
        log.warning(
            "source_retired", source_id=source.id, url=redacted(source.spec.url), reason=reason
        )
    for source in done.revived:
        log.info("source_revived", source_id=source.id, url=redacted(source.spec.url))
    return done


def config_planner(settings: Settings) -> SourcesPlanner:
    """How the config's sources apply to the store (``ingest.sources.plan_config``): the
    built-in default, unlike a config of the user's, never joins a store with sources of its
    own."""
    builtin = settings.origins["sources"] == "default"

    def plan(stored: Sequence[StoredSource], wanted: Sequence[SourceSpec]) -> SourcesPlan:
        return plan_config(stored, wanted, builtin=builtin)

    return plan


class Pass:
    """The workers one pass (or one daemon) needs: the HTTP client, digesters, the writer,
    and the leases this process holds, renewed while their sources are in flight."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        workers: int = 0,
        fetcher: Fetcher | None = None,
        clock: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.owner = str(this_process())
        self.in_flight: set[int] = set()
        self._started: set[int] = set()
        self.settings = settings
        self._fetcher = fetcher
        self.clock = clock
        self.rng = rng or random.Random()
        self._digester = Digester(workers)
        self._writer = StoreWriter(store, route=router(settings.hooks))
        self._limit = asyncio.Semaphore(settings.fetch.concurrency)
        self._heartbeat: asyncio.Task[None] | None = None

    @property
    def fetcher(self) -> Fetcher:
        """The HTTP client, made for the first remote source checked."""
        if self._fetcher is None:
            from ingest.fetch.client import Fetcher  # noqa: PLC0415  (see the imports)

            self._fetcher = Fetcher(self.settings.fetch)
        return self._fetcher

    async def __aenter__(self) -> Pass:
        self._heartbeat = asyncio.create_task(self._renew_leases(), name="lease-heartbeat")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._heartbeat:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
        if self._fetcher is not None:
            await self._fetcher.__aexit__(exc_type, exc, traceback)
        await asyncio.to_thread(self._digester.close)
        await asyncio.to_thread(self._writer.close)

    @property
    def concurrency(self) -> int:
        """Sources processed at once (``[fetch] concurrency``)."""
        return self.settings.fetch.concurrency

    def started(self, source_id: int) -> bool:
        """Whether source ``source_id`` holds a slot (is being fetched or stored), rather than
        waiting for one."""
        return source_id in self._started

    async def claim(
        self, due: Due, *, limit: int, skip: Collection[int] = (), takeover: Collection[str] = ()
    ) -> list[SourceState]:
        """Lease up to ``limit`` sources ``due`` wants, besides those in flight here."""
        return await self._writer.call(
            self.store.claim_due,
            owner=self.owner,
            due=due,
            lease_s=self.settings.schedule.lease,
            limit=limit,
            skip=frozenset(skip) | self.in_flight,
            takeover=takeover,
        )

    async def release(self, ids: Collection[int]) -> None:
        """Give back claims whose check will not be saved (shutdown, a failure)."""
        await self._writer.call(self.store.release, set(ids), owner=self.owner)

    async def dead_owners(self) -> set[str]:
        """Owners of unexpired leases that are processes of this host no longer running: their
        leases are free at once (DESIGN §7)."""
        dead = set()
        for holder in await self._writer.call(self.store.lease_holders):
            if is_gone(holder.owner):
                log.info("leases_taken_over", owner=holder.owner, sources=holder.sources)
                dead.add(holder.owner)
        return dead

    async def held_elsewhere(self, due: Due) -> list[LeaseHolder]:
        """The other live processes holding sources ``due`` wants."""
        holders = await self._writer.call(self.store.lease_holders, due=due)
        return [holder for holder in holders if holder.owner != self.owner]

    async def index_search(self, most: int) -> int:
        """Index up to ``most`` posts of the search backlog, between two writes of checks."""
        return await self._writer.call(self.store.index_backlog, most=most)

    async def _renew_leases(self) -> None:
        """Keep the leases of in-flight sources alive while this process lives.

        On a connection of its own, not through the writer: a renewal must not wait behind a
        queue of checks, or liveness would depend on load.
        """
        lease = self.settings.schedule.lease
        while True:
            await asyncio.sleep(renew_every(lease))
            ids = set(self.in_flight)
            try:
                held = await asyncio.to_thread(
                    self.store.renew, ids, owner=self.owner, lease_s=lease
                )
            except StoreError as exc:  # the store is down: the next beat retries
                log.warning("lease_renewal_failed", error=exc.reason)
                continue
            if lost := (ids - held) & self.in_flight:
                log.warning("leases_lost", owner=self.owner, source_ids=sorted(lost))

    async def store_call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``func(*args, **kwargs)``, a write to the store, run by the writer thread in turn."""
        return await self._writer.call(func, *args, **kwargs)

    async def process(self, state: SourceState, pushed: Fetched | None = None) -> SourceOutcome:
        """Fetch, digest and store one claimed source; its outcome (failures are recorded).

        ``pushed``: a document the source's WebSub hub pushed to us, checked in place of a
        fetch (``ingest.pipeline.push``).

        Waits for one of ``[fetch] concurrency`` slots; the source counts as in flight from the
        call until its check is saved. Never raises: a bug met on the way is reported as a bug
        (status ``bug``, kind ``internal``), its traceback logged, and saved as the source's
        failure (``_record_bug``).
        """
        self.in_flight.add(state.id)
        started = time.perf_counter()
        try:
            async with self._limit:
                self._started.add(state.id)
                return await self._process(state, pushed)
        except Exception as exc:  # noqa: BLE001  (one source must never end the pass)
            failure = _bug(state, exc)
            stored = await self._record_bug(state, failure)
            outcome = SourceOutcome.of_bug(
                state, failure, duration_s=round(time.perf_counter() - started, 4), stored=stored
            )
            _log(outcome, None, failure)
            return outcome
        finally:
            self.in_flight.discard(state.id)
            self._started.discard(state.id)

    async def _process(self, state: SourceState, pushed: Fetched | None) -> SourceOutcome:
        started = time.perf_counter()
        now = self.clock()
        result, digest = await self._check(state, now, pushed)
        change = self._decide(state, result, digest, now)
        failure = result if isinstance(result, Failure) else None
        posts = digest.posts if digest else ()
        filtered = len(digest.filtered) if digest else None
        try:
            counts = await self._writer.record(
                Check(state, posts, change, now, self.owner, filtered=filtered)
            )
            stored = counts is not None
        except StoreError as exc:
            log.error("store_failed", source_id=state.id, url=state.url, exc_info=exc)
            failure = Failed.saying(ErrorKind.STORE, f"could not store the check: {exc.reason}")
            change = self._decide(state, failure, None, now)
            counts, stored = Counter(), False
            # The failure itself is saved, so the source backs off like any failing one; if
            # even that fails, its lease expires and the check is simply retried then.
            with contextlib.suppress(StoreError):
                await self._writer.record(Check(state, (), change, now, self.owner))
        outcome = SourceOutcome(
            source_id=state.id,
            source=state.url,
            status=change.status,
            counts=counts if counts is not None else Counter(),
            skipped=len(digest.skipped) if digest else 0,
            error=failure.reason if failure else None,
            duration_s=round(time.perf_counter() - started, 4),
            stored=stored,
            lease_lost=counts is None,
            error_kind=failure.kind if failure else None,
            filtered=filtered or 0,
            hub=advertised(result if isinstance(result, Fetched) else None, digest, state.url),
        )
        _log(outcome, digest, failure)
        return outcome

    async def _check(
        self, state: SourceState, now: datetime, pushed: Fetched | None = None
    ) -> tuple[FetchResult | None, Digest | None]:
        """(what fetching or reading ``state`` came to, the digest of its new document).

        The one place where a failure raised on the way becomes a value: a ``SourceError`` (a
        document that is no feed, a missing local file, a dead worker) is a ``Failed`` of its
        kind; any other exception is a bug, logged with its traceback.
        """
        try:
            return await self._acquire(state, now, pushed)
        except SourceError as exc:
            return Failed.of(exc), None
        except Exception as exc:  # noqa: BLE001  (one source must never end the pass)
            return _bug(state, exc), None

    async def _acquire(
        self, state: SourceState, now: datetime, pushed: Fetched | None
    ) -> tuple[FetchResult | None, Digest | None]:
        """``_check``, raising SourceError for a document or local source that fails."""
        from ingest.pipeline.acquire import acquire  # noqa: PLC0415  (see the imports)

        return await acquire(
            state.url,
            state.spec,
            settings=self.settings,
            fetcher=self.fetcher,
            digester=self._digester,
            now=now,
            etag=state.etag,
            last_modified=state.last_modified,
            pushed=pushed,
        )

    def _decide(
        self, state: SourceState, result: FetchResult | None, digest: Digest | None, now: datetime
    ) -> SourceUpdate:
        """What the check of ``state`` changes on it: the policy's word (``scheduler.policy``).

        ``result`` is None for a local source read whole.
        """
        interval = self.settings.interval_of(state.spec)
        schedule = self.settings.schedule
        if isinstance(result, Failure):
            return after_failure(
                state, result, interval_s=interval, schedule=schedule, now=now, rng=self.rng
            )
        return after_success(
            state, result, digest, interval_s=interval, schedule=schedule, now=now, rng=self.rng
        )

    async def _record_bug(self, state: SourceState, failure: Failed) -> bool:
        """Save a bug met outside the fetch and the digest (in deciding or storing the check) as
        the source's failure, so it backs off instead of being tried again at every tick; when
        even that fails, give its lease back. Whether the failure was saved."""
        now = self.clock()
        try:
            change = self._decide(state, failure, None, now)
            return await self._writer.record(Check(state, (), change, now, self.owner)) is not None
        except Exception as exc:
            log.error("bug_not_saved", source_id=state.id, url=state.url, exc_info=exc)
            with contextlib.suppress(Exception):  # else the lease simply expires
                await self.release([state.id])
            return False


def _bug(state: SourceState, exc: Exception) -> Failed:
    """A bug met while processing one source: logged with its traceback, a failure of kind
    ``internal``."""
    log.error("source_crashed", source_id=state.id, url=state.url, exc_info=exc)
    return Failed.bug(exc)


def _log(outcome: SourceOutcome, digest: Digest | None, failure: Failure | None) -> None:
    fields: dict[str, Any] = {
        "source_id": outcome.source_id,
        "url": outcome.source,
        "status": outcome.status.value,
        "duration_s": outcome.duration_s,
        **{change.value: outcome.counts.get(change, 0) for change in Change},
        "skipped": outcome.skipped,
        "filtered": outcome.filtered,
    }
    for entry in digest.filtered if digest else ():
        log.debug(
            "entry_filtered",
            source_id=outcome.source_id,
            url=outcome.source,
            guid=entry.guid,
            link=entry.link,
            title=entry.title,
            rule=entry.rule,
        )
    if digest and digest.skipped:
        fields["skipped_first"] = list(digest.skipped[:3])
    if digest and digest.unreadable_dates:
        fields["dates_unreadable"] = len(digest.unreadable_dates)
        fields["dates_unreadable_first"] = list(digest.unreadable_dates[:3])
    if outcome.lease_lost:
        log.warning(
            "lease_lost", **fields, reason="another process took the source over; check dropped"
        )
    elif failure:
        log.warning("source_processed", **fields, error=failure.reason, error_kind=failure.kind)
    else:
        log.info("source_processed", **fields)


def workers_for(source_count: int) -> int:
    """Worker processes for a pass over ``source_count`` sources: none for small passes."""
    if source_count < POOL_THRESHOLD:
        return 0
    return max(1, min(os.cpu_count() or 1, 4))
