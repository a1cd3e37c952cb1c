"""One pass over the sources that are due: the single path ``ingest run`` and the daemon share.

::

    due sources (store) ─► fetch (httpx, event loop) ─► parse + normalize (worker processes)
                                                              │
          outcome ◄─ store: decide + write, each source atomic (one writer thread)

Concurrency: fetches run on the event loop, bounded by ``[fetch] concurrency``; the CPU-bound
conversion runs in worker processes when a pass is large enough to pay for them (else in a
thread; ``ingest.workers``); store writes go through one writer thread with group commit
(``ingest.writer``), so SQLite never sees two writers from us.
Each source's failure is caught here, recorded on the source, and reported as its outcome; the
rest of the pass goes on.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from types import TracebackType
from typing import Any

import structlog

from ingest.config import Settings
from ingest.convert import digest_feed, digest_posts
from ingest.errors import SourceError
from ingest.fetch import Fetcher
from ingest.identity import Change
from ingest.sources import LocalFeed, read_local
from ingest.types import Digest, FeedState, FeedStatus, FeedUpdate, FetchResult
from ingest.workers import Converter
from ingest.writer import StoreWriter
from scheduler.policy import after_failure, after_success, lease_duration
from storage.apply import Check
from storage.claims import claim_due, release
from storage.engine import Store
from storage.feeds import apply_sources
from storage.search import index_backlog

log = structlog.get_logger("ingest.pipeline")

POOL_THRESHOLD = 8
"""Sources in a pass from which conversion moves to worker processes (starting them costs a
fraction of a second, once)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class FeedOutcome:
    """How one source went in one pass: what the summary, the log and the metrics report."""

    source_id: int
    source: str
    status: FeedStatus
    counts: Mapping[Change, int]
    skipped: int
    error: str | None
    duration_s: float


@dataclass(slots=True)
class RunSummary:
    """Every outcome of a pass, in the order sources finished."""

    outcomes: list[FeedOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[FeedOutcome]:
        return [o for o in self.outcomes if not o.status.succeeded]

    def total(self, change: Change) -> int:
        return sum(o.counts.get(change, 0) for o in self.outcomes)


def sync_config_sources(store: Store, settings: Settings, now: datetime) -> None:
    """Apply the config's sources to the store: added or updated, never deleted."""
    apply_sources(store, settings.sources, origin="config", now=now)


class Pass:
    """The workers one pass (or one daemon) needs: the HTTP client, converters, the writer."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        workers: int = 0,
        fetcher: Fetcher | None = None,
        clock: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.owner = owner or new_owner()
        self.in_flight: set[int] = set()
        self.settings = settings
        self.fetcher = fetcher or Fetcher(settings.fetch)
        self.clock = clock
        self.rng = rng or random.Random()
        self._converter = Converter(workers)
        self._writer = StoreWriter(store)
        self._limit = asyncio.Semaphore(settings.fetch.concurrency)

    async def __aenter__(self) -> Pass:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.fetcher.__aexit__(exc_type, exc, traceback)
        self._converter.close()
        await asyncio.to_thread(self._writer.close)

    async def run(
        self,
        states: Iterable[FeedState],
        *,
        on_outcome: Callable[[FeedOutcome], None] | None = None,
    ) -> RunSummary:
        """Process ``states`` concurrently; every one yields an outcome, none raises.

        ``concurrency`` coroutines take the states in turn, so a pass over 10,000 sources holds
        a few dozen of them in flight, not 10,000 waiting tasks.
        """
        summary = RunSummary()
        queue = iter(states)

        async def take_turns() -> None:
            for state in queue:
                outcome = await self.process(state)
                summary.outcomes.append(outcome)
                if on_outcome:
                    on_outcome(outcome)

        async with asyncio.TaskGroup() as group:
            for _ in range(self.settings.fetch.concurrency):
                group.create_task(take_turns())
        return summary

    async def claim(self, *, force: bool = False) -> list[FeedState]:
        """Claim the due sources not already in flight here (the daemon's tick)."""
        return await self._writer.call(
            claim_due,
            self.store,
            owner=self.owner,
            now=self.clock(),
            lease_for=lease_for(self.settings),
            force=force,
            skip=frozenset(self.in_flight),
        )

    async def release(self, ids: Iterable[int]) -> None:
        """Give back claims that will not be processed (shutdown)."""
        await self._writer.call(release, self.store, set(ids), owner=self.owner)

    async def index_search(self, most: int) -> int:
        """Index up to ``most`` posts of the search backlog, between two writes of checks."""
        return await self._writer.call(index_backlog, self.store, most=most)

    async def process(self, state: FeedState) -> FeedOutcome:
        """Fetch, convert and store one claimed source; its outcome (failures are recorded).

        Waits for one of ``[fetch] concurrency`` slots; the source counts as in flight from the
        call until its check is saved.
        """
        self.in_flight.add(state.id)
        try:
            async with self._limit:
                return await self._process(state)
        finally:
            self.in_flight.discard(state.id)

    async def _process(self, state: FeedState) -> FeedOutcome:
        started = time.perf_counter()
        now = self.clock()
        interval = self.settings.interval_of(state.spec)
        schedule = self.settings.schedule
        digest: Digest | None = None
        error: SourceError | None = None
        try:
            result, digest = await self._acquire(state, now)
            change: FeedUpdate = after_success(
                state,
                result,
                digest,
                interval_s=interval,
                schedule=schedule,
                now=now,
                rng=self.rng,
            )
        except Exception as exc:  # noqa: BLE001  (one feed must never end the pass)
            error = exc if isinstance(exc, SourceError) else _internal_error(state, exc)
            change = after_failure(
                state, error, interval_s=interval, schedule=schedule, now=now, rng=self.rng
            )
        status = change.status
        try:
            counts = await self._writer.record(
                Check(state, digest.posts if digest else (), change, now)
            )
        except Exception as exc:
            log.error("store_failed", source_id=state.id, url=state.url, exc_info=exc)
            error = SourceError(state.url, f"could not store the check: {exc}", kind="store")
            status, counts = FeedStatus.ERROR, Counter()
        outcome = FeedOutcome(
            source_id=state.id,
            source=state.url,
            status=status,
            counts=counts,
            skipped=len(digest.skipped) if digest else 0,
            error=error.reason if error else None,
            duration_s=round(time.perf_counter() - started, 4),
        )
        _log(outcome, digest, error)
        return outcome

    async def _acquire(
        self, state: FeedState, now: datetime
    ) -> tuple[FetchResult | None, Digest | None]:
        """(fetch result or None for a local source, digest or None when not modified)."""
        max_body = state.spec.max_body or self.settings.fetch.max_body
        comments = (
            state.spec.comments
            if state.spec.comments is not None
            else self.settings.defaults.comments
        )
        convert = partial(
            self._converter.run, state.url, spec=state.spec, comments=comments, now=now
        )
        if state.is_remote:
            result = await self.fetcher.fetch(
                state.url, etag=state.etag, last_modified=state.last_modified, max_body=max_body
            )
            if result.document is None:
                return result, None
            digest = await convert(
                digest_feed, result.document, url=result.url, charset=result.charset
            )
            return result, digest
        local = await asyncio.to_thread(read_local, state.url, max_body=max_body)
        if isinstance(local, LocalFeed):
            return None, await convert(digest_feed, local.data)
        return None, await convert(digest_posts, local.files, local.skipped)


def _internal_error(state: FeedState, exc: Exception) -> SourceError:
    """A bug met while processing one source: logged with its traceback, reported as a failure."""
    log.error("source_crashed", source_id=state.id, url=state.url, exc_info=exc)
    return SourceError(
        state.url,
        f"internal error {type(exc).__name__}: {exc} (a bug in feed-ingest; please report it "
        "with this feed)",
        kind="internal",
    )


def _log(outcome: FeedOutcome, digest: Digest | None, error: SourceError | None) -> None:
    fields: dict[str, Any] = {
        "source_id": outcome.source_id,
        "url": outcome.source,
        "status": outcome.status.value,
        "duration_s": outcome.duration_s,
        **{change.value: outcome.counts.get(change, 0) for change in Change},
        "skipped": outcome.skipped,
    }
    if digest and digest.skipped:
        fields["skipped_first"] = list(digest.skipped[:3])
    if error:
        log.warning("source_processed", **fields, error=error.reason, error_kind=error.kind)
    else:
        log.info("source_processed", **fields)


def workers_for(source_count: int) -> int:
    """Worker processes for a pass over ``source_count`` sources: none for small passes."""
    if source_count < POOL_THRESHOLD:
        return 0
    return max(1, min(os.cpu_count() or 1, 4))


async def run_once(
    store: Store,
    settings: Settings,
    *,
    force: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_outcome: Callable[[FeedOutcome], None] | None = None,
) -> RunSummary:
    """``ingest run``: apply the config's sources, claim those that are due, process them.

    ``on_start`` hears how many sources were claimed, ``on_outcome`` each outcome as it comes.
    """
    now = utc_now()
    sync_config_sources(store, settings, now)
    owner = new_owner()
    states = claim_due(store, owner=owner, now=now, lease_for=lease_for(settings), force=force)
    if on_start:
        on_start(len(states))
    async with Pass(store, settings, workers=workers_for(len(states)), owner=owner) as run:
        return await run.run(states, on_outcome=on_outcome)


def new_owner() -> str:
    """A name for this process's claims: host, pid and a nonce (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def lease_for(settings: Settings) -> Callable[[int], float]:
    return partial(
        lease_duration,
        timeout_s=settings.fetch.timeout,
        concurrency=settings.fetch.concurrency,
    )
