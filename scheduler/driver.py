"""Running what is due: the one driver of ``ingest run`` and of every tick of ``ingest serve``.

::

    claim a batch (leased, at most 2 x concurrency) ─► a task per source ─► Pass.process
       ▲                                                                        │
       └──── claim more once half the batch is done, while more is wanted ◄─────┘

    signal ─► stop claiming ─► sources waiting for a slot are released at once; those being
    fetched get [serve] grace to finish, then are cancelled and released ─► summary

A pass never holds a lease on work it will not start soon, so a process that dies strands at
most one batch, and only until the next pass on this host sees it dead (``scheduler.lease``)
or, from another host, until the lease expires. ``ingest run`` stops when nothing it wants is
left (``one_shot``); the daemon keeps the driver going and asks it to look again on every tick.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Protocol

import structlog

from ingest.config import Settings
from ingest.errors import StoreError
from ingest.pipeline.runner import (
    Pass,
    config_planner,
    sync_config_sources,
    utc_now,
    workers_for,
)
from ingest.types import Due, Failed, RunSummary, SourceOutcome, SourceState
from scheduler.idle import fingerprint, idle_until
from storage import Store

log = structlog.get_logger("scheduler.driver")

BATCH_PER_SLOT = 2
"""Sources claimed per ``[fetch] concurrency`` slot: enough that a slot never waits for a claim."""
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

if TYPE_CHECKING:  # imported where used: a pass without hooks loads no HTTP client
    from ingest.pipeline.deliver import Deliverer


class Runner(Protocol):
    """What the driver needs of a pass (``ingest.pipeline.runner.Pass``; tests use a fake)."""

    @property
    def concurrency(self) -> int: ...

    async def claim(
        self, due: Due, *, limit: int, skip: Collection[int] = (), takeover: Collection[str] = ()
    ) -> list[SourceState]: ...

    async def process(self, state: SourceState) -> SourceOutcome: ...

    def started(self, source_id: int) -> bool: ...

    async def release(self, ids: Collection[int]) -> None: ...

    async def dead_owners(self) -> set[str]: ...


class Driver:
    """Claims sources in batches and runs each through ``runner``; see the module docstring."""

    def __init__(
        self,
        runner: Runner,
        due: Callable[[], Due],
        *,
        one_shot: bool,
        on_outcome: Callable[[SourceOutcome], None] | None = None,
    ) -> None:
        self.runner = runner
        self.due = due
        self.one_shot = one_shot
        self.on_outcome = on_outcome
        self.batch = BATCH_PER_SLOT * runner.concurrency
        self.summary = RunSummary()
        self.tasks: dict[asyncio.Task[SourceOutcome], SourceState] = {}
        self._more = True
        self._stopping = False
        self._takeover: set[str] = set()
        self._not_stored: set[int] = set()
        self._wake = asyncio.Event()
        self._claiming = asyncio.Lock()

    async def look_for_dead_owners(self) -> None:
        """Take over the leases of processes of this host that died (on the next claims)."""
        self._takeover = await self.runner.dead_owners()

    async def poll(self) -> None:
        """Claim what is due now (the daemon's tick).

        Shielded: a tick cancelled mid-claim (the scheduler shutting down) still lets the claim
        finish, so its sources are either started or released, never left leased.
        """
        self._more = True
        await asyncio.shield(self._fill())

    async def run(self) -> RunSummary:
        """Claim and process until stopped or, ``one_shot``, until nothing wanted is left.

        A failed claim ends a one-shot pass (raised); the daemon logs it and waits for its
        next tick.
        """
        while not self._stopping:
            self._wake.clear()
            if self._time_to_claim:
                try:
                    await self._fill()
                except Exception:
                    if self.one_shot:
                        raise
                    log.exception("claim_failed")
                    self._more = False
            if self.one_shot and not self.tasks and not self._more:
                break
            if not self._time_to_claim:
                await self._wake.wait()
        return self.summary

    @property
    def _time_to_claim(self) -> bool:
        """More may be wanted, and half of the batch is done."""
        return self._more and len(self.tasks) <= self.batch // 2

    def stop(self, signum: signal.Signals | None = None) -> None:
        """Claim nothing more; ``run`` returns (``drain`` then ends the work in flight)."""
        self._stopping = True
        if signum is not None:
            self.summary.interrupted = signum
        self._wake.set()

    async def drain(self, grace: float) -> None:
        """Release the sources not started yet; give the others ``grace`` seconds to finish,
        then cancel them and release their leases. A check already handed to the store
        writer is still written whole."""
        self._stopping = True
        async with self._claiming:  # a claim under way ends first (see ``_fill``)
            waiting = [
                task for task, state in self.tasks.items() if not self.runner.started(state.id)
            ]
        late = await self._cancel(waiting)
        busy = list(self.tasks)
        if busy:
            _, unfinished = await asyncio.wait(busy, timeout=grace)
            late += await self._cancel(unfinished)
            if unfinished:
                log.warning("sources_cancelled", count=len(unfinished), grace_s=grace)
        await self.runner.release(late)

    async def _cancel(self, tasks: Collection[asyncio.Task[SourceOutcome]]) -> list[int]:
        """Cancel ``tasks`` and wait for them; their sources' ids."""
        ids = [self.tasks[task].id for task in tasks if task in self.tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return ids

    async def _fill(self) -> int:
        """Claim up to the batch's free room and start a task per source; how many."""
        async with self._claiming:
            room = self.batch - len(self.tasks)
            if self._stopping or room <= 0:
                return 0
            states = await self.runner.claim(
                self.due(), limit=room, skip=self._not_stored, takeover=self._takeover
            )
            if self._stopping:  # stopped while claiming: these will not be started
                await self.runner.release([state.id for state in states])
                return 0
            self._more = len(states) == room
            for state in states:
                task = asyncio.create_task(self.runner.process(state), name=f"source-{state.id}")
                self.tasks[task] = state
                task.add_done_callback(self._finished)
            return len(states)

    def _finished(self, task: asyncio.Task[SourceOutcome]) -> None:
        state = self.tasks.pop(task)
        self._wake.set()
        if task.cancelled():
            return
        if (error := task.exception()) is not None:  # a bug past the runner's own guard
            log.error("source_task_failed", source_id=state.id, exc_info=error)
            outcome = SourceOutcome.of_bug(state, Failed.bug(error))
        else:
            outcome = task.result()
        if self.one_shot:
            self.summary.outcomes.append(outcome)
            if not outcome.stored:
                self._not_stored.add(outcome.source_id)  # never claimed again by this pass
        if self.on_outcome:
            self.on_outcome(outcome)


@contextmanager
def stopping_on_signals(stop: Callable[[signal.Signals], None]) -> Iterator[None]:
    """Call ``stop`` on the first SIGINT or SIGTERM; exit at once, 128 + signal, on a second.

    Exiting at once is safe: every write is a transaction, and the leases left behind are
    free at once to the next pass on this host (the process is gone).
    """
    loop = asyncio.get_running_loop()
    received: list[signal.Signals] = []

    def on_signal(signum: signal.Signals) -> None:
        if received:
            log.warning("killed", signal=signum.name)
            if sys.stderr.isatty():
                sys.stderr.write("\x1b[?25h")  # show the cursor a progress bar had hidden
                sys.stderr.flush()
            os._exit(128 + signum)
        received.append(signum)
        log.info("stopping", signal=signum.name)
        stop(signum)

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        yield
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


async def run_once(
    store: Store,
    settings: Settings,
    *,
    force: bool = False,
    only: Callable[[Store], Collection[int]] | None = None,
    on_start: Callable[[int], None] | None = None,
    on_outcome: Callable[[SourceOutcome], None] | None = None,
) -> RunSummary:
    """``ingest run``: apply the config's sources, then process every source that is due
    (``force``: every enabled one) until none is left or a signal stops the pass; then, with
    ``[[hooks]]``, deliver what the outbox holds (``ingest.pipeline.deliver``).

    ``only`` picks, once the config is applied, the sources to check now, due or not, and
    leaves the others alone (``ingest run ID...``). ``on_start`` hears how many sources the
    pass wants, ``on_outcome`` each outcome as it comes. A pass not interrupted ends by leaving
    the store's idle mark (``scheduler.idle``).
    """
    stop = _Stop()
    with stopping_on_signals(stop):
        started = utc_now()
        synced = sync_config_sources(store, settings, started)
        chosen = None if only is None else frozenset(only(store))
        due = Due(now=started, force=force or chosen is not None, fresh_since=started, only=chosen)
        wanted = store.count_wanted(due)
        if on_start:
            on_start(wanted)
        async with Pass(store, settings, workers=workers_for(wanted)) as runner:
            driver = Driver(runner, lambda: due, one_shot=True, on_outcome=on_outcome)
            stop.attach(driver)
            try:
                await driver.look_for_dead_owners()
                summary = await driver.run()
            finally:  # a failed claim too: end what is in flight, release what is not
                await driver.drain(settings.serve.grace)
            summary.held_elsewhere = await runner.held_elsewhere(due)
        if settings.hooks and not summary.interrupted:
            await _deliver(store, settings, summary, stop)
    if not summary.interrupted:
        await _leave_idle_mark(store, settings)
    summary.retired, summary.revived = synced.retired, synced.revived
    return summary


async def _leave_idle_mark(store: Store, settings: Settings) -> None:
    """Leave the mark that lets the next ``ingest run`` say "nothing is due" at once. It only
    saves time: a store too busy to take it costs the pass nothing but a warning."""
    until = partial(idle_until, delivery_lead_s=settings.delivery.run_budget)
    try:
        await asyncio.to_thread(
            store.mark_idle,
            fingerprint(settings),
            hooks=[hook.name for hook in settings.hooks],
            until=until,
            specs=settings.sources,
            plan=config_planner(settings),
        )
    except StoreError as exc:
        log.warning("idle_mark_not_saved", error=str(exc))


async def _deliver(store: Store, settings: Settings, summary: RunSummary, stop: _Stop) -> None:
    """The end of ``ingest run``: deliver what the outbox holds for the configured hooks, for
    at most ``[delivery] run_budget``; the attempts and what is left go into ``summary``."""
    from ingest.pipeline.deliver import Deliverer  # noqa: PLC0415  (see the imports)

    async with Deliverer(store, settings) as deliverer:
        stop.attach_deliverer(deliverer)
        summary.deliveries = await deliverer.run(
            budget=settings.delivery.run_budget, grace=settings.serve.grace
        )
    pending = await asyncio.to_thread(store.pending_deliveries)
    summary.deliveries_pending = sum(pending.get(hook.name, 0) for hook in settings.hooks)


class _Stop:
    """What a first signal does to ``ingest run``: stop its driver, even one not made yet,
    and the hook deliveries at its end."""

    def __init__(self) -> None:
        self._driver: Driver | None = None
        self._deliverer: Deliverer | None = None
        self._signal: signal.Signals | None = None

    def __call__(self, signum: signal.Signals) -> None:
        self._signal = signum
        if self._driver:
            self._driver.stop(signum)
        if self._deliverer:
            self._deliverer.stop()

    def attach_deliverer(self, deliverer: Deliverer) -> None:
        self._deliverer = deliverer

    def attach(self, driver: Driver) -> None:
        self._driver = driver
        if self._signal:
            driver.stop(self._signal)
