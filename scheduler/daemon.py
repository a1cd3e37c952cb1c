"""``ingest serve``: APScheduler drives a tick that hands due sources to the one pipeline.

::

    start: config sources -> store; /healthz + /metrics up; tick every [serve] tick
    tick:  claim due sources (leased in the store) -> one task per source -> Pass.process;
           index a bounded batch of the search backlog
    stop:  SIGTERM/SIGINT -> no more ticks -> in-flight sources finish (at most [serve] grace,
           then cancelled; a transaction under way still commits or rolls back whole) ->
           unstarted claims released -> exit 0. A second signal exits at once: every write is
           a transaction, so nothing is left half-done.

APScheduler is imported here and nowhere else. What is due, and when a source is next due, is
decided by ``scheduler.policy`` and kept in the store, so a restart neither re-polls everything
nor forgets a backoff.
"""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import func, select

from ingest.config import Settings
from ingest.observability import HttpEndpoint, Metrics, http_app
from ingest.pipeline import FeedOutcome, Pass, sync_config_sources, utc_now, workers_for
from storage.engine import Store
from storage.feeds import SOURCES, T

log = structlog.get_logger("scheduler.daemon")

EXIT_FORCED = 1
INDEX_PER_TICK = 2000
"""Search backlog indexed per tick: bounded, so one tick never holds the writer for long."""
STALE_TICKS = 3
"""/healthz fails when no tick succeeded for this many tick intervals."""


class Daemon:
    """One long-lived pass over the store, ticking until told to stop."""

    def __init__(self, store: Store, settings: Settings, *, metrics: Metrics | None = None) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.last_tick: datetime | None = None
        self.port: int | None = None
        self._tasks: dict[asyncio.Task[FeedOutcome], int] = {}
        self._stop = asyncio.Event()
        self._runner: Pass | None = None

    async def run(self) -> None:
        """Serve until a signal (or ``stop``); returns after a clean shutdown."""
        loop = asyncio.get_running_loop()
        sync_config_sources(self.store, self.settings, utc_now())
        with self.store.read() as conn:
            sources = conn.execute(select(func.count()).select_from(SOURCES)).scalar_one()
        serve = self.settings.serve
        endpoint = HttpEndpoint(serve.host, serve.port, http_app(self.metrics, self.health))
        self.port = endpoint.port
        scheduler = AsyncIOScheduler(timezone=UTC)
        try:
            async with Pass(self.store, self.settings, workers=workers_for(sources)) as runner:
                self._runner = runner
                scheduler.add_job(
                    self._tick,
                    "interval",
                    seconds=serve.tick,
                    next_run_time=datetime.now(UTC),
                    id="tick",
                    max_instances=1,
                    coalesce=True,
                )
                scheduler.start()
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(signum, self._on_signal, signum)
                log.info("daemon_started", port=self.port, sources=sources, tick_s=serve.tick)
                await self._stop.wait()
                scheduler.shutdown(wait=False)
                await self._drain(runner)
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            endpoint.close()
        log.info("daemon_stopped")

    def stop(self) -> None:
        self._stop.set()

    def health(self) -> tuple[bool, str]:
        """(healthy, why): the scheduler ticked recently and the store answers."""
        if self.last_tick is None:
            return False, "starting: no tick yet"
        age = (utc_now() - self.last_tick).total_seconds()
        if age > STALE_TICKS * self.settings.serve.tick + 5:
            return False, f"no successful tick for {age:.0f}s"
        try:
            with self.store.read() as conn:
                conn.exec_driver_sql("SELECT 1")
        except Exception as exc:  # noqa: BLE001  (any failure of the store is "unhealthy")
            return False, f"store not answering: {exc}"
        return True, f"ok: last tick {age:.0f}s ago, {len(self._tasks)} sources in flight"

    async def _tick(self) -> None:
        runner = self._runner
        if runner is None or self._stop.is_set():
            return
        try:
            claimed = await runner.claim()
            for state in claimed:
                task = asyncio.create_task(runner.process(state), name=f"source-{state.id}")
                self._tasks[task] = state.id
                task.add_done_callback(self._finished)
            self.metrics.sources_due.set(len(self._tasks))
            self.metrics.sources_failing.set(self._failing())
            await runner.index_search(most=INDEX_PER_TICK)
        except Exception:  # a bad tick is logged; /healthz turns 503 if it lasts
            log.exception("tick_failed")
            return
        self.last_tick = utc_now()
        self.metrics.last_tick.set(self.last_tick.timestamp())

    def _finished(self, task: asyncio.Task[FeedOutcome]) -> None:
        self._tasks.pop(task, None)
        if not task.cancelled() and task.exception() is None:
            self.metrics.observe(task.result())

    def _failing(self) -> int:
        query = select(func.count()).where(T.enabled.is_(True), T.error_count > 0)
        with self.store.read() as conn:
            return int(conn.execute(query.select_from(SOURCES)).scalar_one())

    def _on_signal(self, signum: int) -> None:
        if self._stop.is_set():
            log.warning("daemon_killed", signal=signal.Signals(signum).name)
            os._exit(EXIT_FORCED)
        log.info("daemon_stopping", signal=signal.Signals(signum).name, in_flight=len(self._tasks))
        self._stop.set()

    async def _drain(self, runner: Pass) -> None:
        """Let in-flight sources finish within the grace period, then cancel and release them.

        A cancelled source whose transaction was already under way still commits or rolls back
        whole (the writer thread finishes it before the process exits).
        """
        if not self._tasks:
            return
        ids = dict(self._tasks)
        _, late = await asyncio.wait(ids, timeout=self.settings.serve.grace)
        if not late:
            return
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        log.warning("daemon_cancelled_sources", count=len(late))
        await runner.release(ids[task] for task in late)
