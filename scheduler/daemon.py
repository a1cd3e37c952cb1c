"""``ingest serve``: APScheduler ticks, and the one driver (``scheduler.driver``) does the work.

::

    start: config sources -> store; /healthz, /metrics, /feeds/ (and /websub/ with [websub]
           callback_url) up; tick every [serve] tick; with [[hooks]], the delivery worker in a
           thread of its own (ingest.pipeline.deliver)
    tick:  take over leases of dead processes of this host; claim what is due (the driver
           claims more between ticks while a backlog lasts); index a bounded batch of the
           search backlog; count the hook deliveries pending; ask WebSub hubs what is due
           (``ingest.pipeline.push``)
    stop:  SIGTERM/SIGINT -> no more ticks or claims -> sources waiting for a slot released ->
           in-flight sources finish (at most [serve] grace, then cancelled and released; a
           transaction under way still commits or rolls back whole) -> hook deliveries under
           way get [serve] grace too -> exit 0. A second
           signal exits at once (128 + signal): every write is a transaction, and the leases
           left behind are free to the next process on this host.

APScheduler is imported here and nowhere else. What is due, and when a source is next due, is
decided by ``scheduler.policy`` and kept in the store, so a restart neither re-polls everything
nor forgets a backoff. Several daemons may share one PostgreSQL store: leases keep each source
with one of them at a time (DESIGN §7).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from ingest.config import Settings
from ingest.observe.metrics import HttpEndpoint, Metrics, http_app
from ingest.pipeline.deliver import DeliveryThread
from ingest.pipeline.push import Push
from ingest.pipeline.runner import Pass, sync_config_sources, utc_now, workers_for
from ingest.publish.feedapp import PREFIX as FEEDS_PREFIX
from ingest.publish.feedapp import feeds_app
from ingest.types import Due, SourceOutcome
from ingest.websub.callback import callback_app
from scheduler.driver import Driver, stopping_on_signals
from storage import Store

log = structlog.get_logger("scheduler.daemon")

INDEX_PER_TICK = 2000
"""Search backlog indexed per tick: bounded, so one tick never holds the writer for long."""
STALE_TICKS = 3
"""/healthz fails when no tick succeeded for this many tick intervals."""


class Daemon:
    """One long-lived driver over the store, ticking until told to stop."""

    def __init__(self, store: Store, settings: Settings, *, metrics: Metrics | None = None) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics or Metrics(hooks=[hook.name for hook in settings.hooks])
        self.last_tick: datetime | None = None
        self.port: int | None = None
        self._stop = asyncio.Event()
        self._driver: Driver | None = None
        self._runner: Pass | None = None
        self._push = (
            Push(store, settings, count=self.metrics.count_push, on_outcome=self._observe)
            if settings.websub.enabled
            else None
        )

    async def run(self) -> None:
        """Serve until a signal (or ``stop``); returns after a clean shutdown."""
        sync_config_sources(self.store, self.settings, utc_now())
        sources = self.store.count_sources()
        serve = self.settings.serve
        mounts = {FEEDS_PREFIX.rstrip("/"): feeds_app(self.store)} if serve.feeds else {}
        if self._push:
            mounts["/websub"] = callback_app(self._push, utc_now)
        endpoint = HttpEndpoint(serve.host, serve.port, http_app(self.metrics, self.health, mounts))
        self.port = endpoint.port
        scheduler = AsyncIOScheduler(timezone=UTC)
        deliveries = None
        try:
            async with Pass(self.store, self.settings, workers=workers_for(sources)) as runner:
                driver = Driver(
                    runner,
                    lambda: Due(now=utc_now()),
                    one_shot=False,
                    on_outcome=self._observe,
                )
                self._driver, self._runner = driver, runner
                if self._push:
                    self._push.start(runner)
                scheduler.add_job(
                    self._tick,
                    "interval",
                    seconds=serve.tick,
                    next_run_time=datetime.now(UTC),
                    id="tick",
                    max_instances=1,
                    coalesce=True,
                )
                if self.settings.hooks:
                    deliveries = DeliveryThread(
                        self.store, self.settings, on_outcome=self.metrics.observe_delivery
                    )
                with stopping_on_signals(lambda _signum: self.stop()):
                    scheduler.start()
                    log.info("daemon_started", port=self.port, sources=sources, tick_s=serve.tick)
                    driving = asyncio.create_task(driver.run(), name="driver")
                    await self._stop.wait()
                    driver.stop()
                    scheduler.shutdown(wait=False)
                    await driving
                    if self._push:
                        await self._push.stop(serve.grace)
                    await driver.drain(serve.grace)
        finally:
            if deliveries:
                await asyncio.to_thread(deliveries.stop)
            endpoint.close()
        log.info("daemon_stopped")

    def stop(self) -> None:
        self._stop.set()

    def _observe(self, outcome: SourceOutcome) -> None:
        """Each outcome, a poll's or a push's: counted, and its hub learnt."""
        self.metrics.observe(outcome)
        if self._push:
            self._push.learn(outcome)

    def health(self) -> tuple[bool, str]:
        """(healthy, why): the scheduler ticked recently and the store answers."""
        if self.last_tick is None:
            return False, "starting: no tick yet"
        age = (utc_now() - self.last_tick).total_seconds()
        if age > STALE_TICKS * self.settings.serve.tick + 5:
            return False, f"no successful tick for {age:.0f}s"
        try:
            self.store.ping()
        except Exception as exc:  # noqa: BLE001  (any failure of the store is "unhealthy")
            return False, f"store not answering: {exc}"
        in_flight = len(self._driver.tasks) if self._driver else 0
        return True, f"ok: last tick {age:.0f}s ago, {in_flight} sources in flight"

    async def _tick(self) -> None:
        driver, runner = self._driver, self._runner
        if driver is None or runner is None or self._stop.is_set():
            return
        try:
            await driver.look_for_dead_owners()
            await driver.poll()
            due = await asyncio.to_thread(self.store.count_wanted, Due(now=utc_now()))
            self.metrics.sources_due.set(due)
            self.metrics.sources_failing.set(await asyncio.to_thread(self.store.count_failing))
            if self.settings.hooks:
                self.metrics.hooks_pending(await asyncio.to_thread(self.store.pending_deliveries))
            await runner.index_search(most=INDEX_PER_TICK)
            if self._push:
                self._push.maintain_soon()
        except Exception:  # a bad tick is logged; /healthz turns 503 if it lasts
            log.exception("tick_failed")
            return
        self.last_tick = utc_now()
        self.metrics.last_tick.set(self.last_tick.timestamp())
