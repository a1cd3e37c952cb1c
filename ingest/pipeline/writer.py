"""The one thread that writes to the store, with group commit.

Every write of a pass or of the daemon goes through this thread, in order: SQLite takes one
writer at a time anyway, and a single writer never waits for a lock we hold ourselves. While it
commits one transaction, the checks that finish meanwhile queue up; it then commits all of them
in the next transaction (up to ``MAX_GROUP``). Under load that is one commit for dozens of
sources instead of one each; when idle, a check is written at once.

If a group's transaction fails, its checks are written again one by one, so only the check
that failed gets the error.

The writer hands the store ``ingest.identity.decide``, which the store calls inside each
check's transaction (read what is known, decide, write: DESIGN §4), and the hooks' router
(``ingest.hooks.router``), so hook deliveries are queued in the same commit as their posts.

Search indexing rides on the same thread, in the time no write is waiting: after a commit that
stored new or revised posts, whenever its queue is empty, the writer indexes the search backlog
``INDEX_SLICE`` posts at a time until it is empty, and ``close`` indexes what is left. So a pass
or the daemon keeps the index current as it goes, off the fetch path, and the first search after
any pass has nothing left to index; a check that arrives meanwhile waits for one slice at most.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import structlog

from ingest.errors import StoreError
from ingest.identity import decide
from ingest.types import Change, Check, HookRouter
from storage import Store

T = TypeVar("T")
MAX_GROUP = 64
INDEX_SLICE = 200
"""Posts indexed between two looks at the queue: about a tenth of a second of work."""
_STORES_TEXT = frozenset({Change.NEW, Change.UPDATED})

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class _Job:
    work: Check | Callable[[], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


class StoreWriter:
    """Writes checks and runs store calls in one thread; ``close`` drains it and stops it."""

    def __init__(self, store: Store, *, route: HookRouter | None = None) -> None:
        self.store = store
        self.route = route
        """Names the hooks new and revised posts are queued for (``ingest.hooks.router``)."""
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._unindexed = False  # whether a commit may have left posts on the search backlog
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    async def record(self, check: Check) -> Counter[Change] | None:
        """Store ``check``; what happened to its posts, None if it was dropped because its
        lease was lost (``Store.record_checks``). Raises what storing it raised."""
        result: Counter[Change] | None = await self._submit(check)
        return result

    async def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``func(*args, **kwargs)`` run by the writer thread, after what is queued before it."""
        result: T = await self._submit(partial(func, *args, **kwargs))
        return result

    def close(self) -> None:
        """Finish every queued job, then stop the thread."""
        self._jobs.put(None)
        self._thread.join()

    def _submit(self, work: Check | Callable[[], Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._jobs.put(_Job(work, future, loop))
        return future

    def _run(self) -> None:
        held: _Job | None = None
        stopping = False
        while not stopping:
            job = held if held is not None else self._next_job()
            held = None
            if job is None:
                break
            if not isinstance(job.work, Check):
                self._call(job, job.work)
                continue
            group = [job]
            while len(group) < MAX_GROUP:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True  # commit this group, then stop
                    break
                if not isinstance(more.work, Check):
                    held = more
                    break
                group.append(more)
            self._commit(group)
        while self._unindexed:
            self._index_slice()

    def _next_job(self) -> _Job | None:
        """The next queued job; while none is queued, the search backlog is indexed."""
        while self._unindexed:
            try:
                return self._jobs.get_nowait()
            except queue.Empty:
                self._index_slice()
        return self._jobs.get()

    def _index_slice(self) -> None:
        """Index one slice of the backlog. A failure leaves it on the backlog, which the next
        search, tick or ``ingest db index`` indexes; it never stops the writer."""
        indexed = 0
        try:
            indexed = self.store.index_backlog(most=INDEX_SLICE)
        except StoreError as exc:
            log.warning("search_indexing_failed", error=exc.reason)
        except Exception:  # a bug: logged with its traceback, and writing goes on
            log.exception("search_indexing_bug")
        self._unindexed = indexed == INDEX_SLICE

    @staticmethod
    def _call(job: _Job, work: Callable[[], Any]) -> None:
        try:
            result = work()
        except Exception as exc:  # noqa: BLE001  (handed to the awaiting coroutine)
            _resolve(job, None, exc)
        else:
            _resolve(job, result, None)

    def _commit(self, group: list[_Job]) -> None:
        checks = [job.work for job in group if isinstance(job.work, Check)]
        try:
            results = self.store.record_checks(checks, decide=decide, route=self.route)
        except Exception as exc:  # noqa: BLE001  (handed over; a group retries one by one)
            if len(group) == 1:
                _resolve(group[0], None, exc)
            else:
                for job in group:
                    self._commit([job])
            return
        _resolve_all([(job, result, None) for job, result in zip(group, results, strict=True)])
        if any(changes and not _STORES_TEXT.isdisjoint(changes) for changes in results):
            self._unindexed = True


def _resolve(job: _Job, result: Any, error: BaseException | None) -> None:
    _resolve_all([(job, result, error)])


def _resolve_all(outcomes: list[tuple[_Job, Any, BaseException | None]]) -> None:
    """Hand results to their coroutines with one wake-up of their loop, not one per job."""

    def settle() -> None:
        for job, result, error in outcomes:
            if job.future.cancelled():
                continue
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(result)

    if outcomes:
        outcomes[0][0].loop.call_soon_threadsafe(settle)
