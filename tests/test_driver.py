"""The driver against a fake pass: bounded claims, refills, the end of a pass, and stopping."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Collection
from datetime import UTC, datetime

import pytest

from ingest.types import Due, SourceOutcome, SourceState, SourceStatus
from scheduler.driver import Driver
from tests.builders import a_state

DUE = Due(now=datetime(2024, 6, 1, tzinfo=UTC))


class FakeRunner:
    """A pass over ``sources`` due sources whose processing takes ``work_s`` (or waits for
    ``gate``), recording what a store would: leases held, claims, releases."""

    def __init__(self, sources: int, *, concurrency: int, work_s: float = 0.001) -> None:
        self.concurrency = concurrency
        self.due = list(range(1, sources + 1))
        self.work_s = work_s
        self.leased: set[int] = set()
        self.most_leased = 0
        self.claims: list[int] = []
        self.processed: Counter[int] = Counter()
        self.released: list[int] = []
        self.gate: asyncio.Event | None = None
        self.claim_gate: asyncio.Event | None = None
        self._slots = asyncio.Semaphore(concurrency)
        self._started: set[int] = set()

    async def claim(
        self, due: Due, *, limit: int, skip: Collection[int] = (), takeover: Collection[str] = ()
    ) -> list[SourceState]:
        if self.claim_gate:
            await self.claim_gate.wait()
        free = [i for i in self.due if i not in self.leased and i not in skip][:limit]
        self.leased.update(free)
        self.most_leased = max(self.most_leased, len(self.leased))
        self.claims.append(len(free))
        return [a_state(i) for i in free]

    async def process(self, state: SourceState) -> SourceOutcome:
        async with self._slots:
            self._started.add(state.id)
            try:
                if self.gate:
                    await self.gate.wait()
                await asyncio.sleep(self.work_s)
            finally:
                self._started.discard(state.id)
        self.processed[state.id] += 1
        self.due.remove(state.id)  # checked: not due again
        self.leased.discard(state.id)
        return SourceOutcome(state.id, state.url, SourceStatus.OK, Counter(), 0, None, self.work_s)

    def started(self, source_id: int) -> bool:
        return source_id in self._started

    async def release(self, ids: Collection[int]) -> None:
        self.released.extend(ids)
        self.leased.difference_update(ids)

    async def dead_owners(self) -> set[str]:
        return set()


def test_a_pass_processes_every_due_source_once_holding_at_most_two_batches() -> None:
    runner = FakeRunner(500, concurrency=8)

    async def scenario() -> None:
        driver = Driver(runner, lambda: DUE, one_shot=True)
        summary = await driver.run()
        assert len(summary.outcomes) == 500

    asyncio.run(scenario())

    assert set(runner.processed.values()) == {1}
    assert len(runner.processed) == 500
    assert runner.most_leased <= 16
    assert len(runner.claims) >= 500 // 16  # claimed a batch at a time, not all at once
    assert runner.claims[-1] < 16  # the last, short claim is what ended the pass
    assert runner.released == []


def test_a_source_whose_processing_raises_is_reported_as_a_bug_and_the_pass_goes_on() -> None:
    """The runner never raises by contract; should a bug slip past it, the pass still reports
    the source (so ``ingest run`` exits 70) and never checks it again in this pass."""

    class BuggyRunner(FakeRunner):
        async def process(self, state: SourceState) -> SourceOutcome:
            if state.id == 2:
                self.due.remove(state.id)
                self.leased.discard(state.id)
                raise ZeroDivisionError("a bug")
            return await super().process(state)

    runner = BuggyRunner(5, concurrency=2)
    summary = asyncio.run(Driver(runner, lambda: DUE, one_shot=True).run())

    assert [o.source_id for o in summary.bugs] == [2]
    assert summary.bugs[0].error_kind == "internal"
    assert "ZeroDivisionError: a bug" in (summary.bugs[0].error or "")
    assert len(summary.succeeded) == 4


def test_a_pass_with_nothing_due_ends_at_once() -> None:
    runner = FakeRunner(0, concurrency=4)
    summary = asyncio.run(Driver(runner, lambda: DUE, one_shot=True).run())
    assert summary.outcomes == []
    assert runner.claims == [0]


async def stopped_pass(runner: FakeRunner, *, after_s: float, grace: float) -> Driver:
    """A one-shot pass stopped ``after_s`` into it and drained, as a signal would; its driver."""
    driver = Driver(runner, lambda: DUE, one_shot=True)
    running = asyncio.create_task(driver.run())
    await asyncio.sleep(after_s)
    driver.stop()
    await running
    await driver.drain(grace=grace)
    return driver


def test_stopping_releases_waiting_sources_and_cancels_the_late_ones() -> None:
    runner = FakeRunner(50, concurrency=4)
    runner.gate = asyncio.Event()  # processing never finishes by itself

    driver = asyncio.run(stopped_pass(runner, after_s=0.05, grace=0.1))

    assert driver.tasks == {}

    assert sorted(runner.released) == list(range(1, 9))  # the 8 claimed: 4 waiting, 4 late
    assert runner.leased == set()
    assert not runner.processed


def test_in_flight_sources_may_finish_within_the_grace_period() -> None:
    runner = FakeRunner(8, concurrency=4, work_s=0.05)

    asyncio.run(stopped_pass(runner, after_s=0.01, grace=5))

    assert len(runner.processed) == 4  # those holding a slot finished
    assert sorted(runner.released) == [5, 6, 7, 8]  # those waiting for one were given back


def test_a_claim_that_lands_after_a_stop_is_released_not_started() -> None:
    runner = FakeRunner(20, concurrency=4)

    async def scenario() -> None:
        runner.claim_gate = asyncio.Event()
        driver = Driver(runner, lambda: DUE, one_shot=False)
        polling = asyncio.create_task(driver.poll())
        await asyncio.sleep(0.01)  # the claim is under way
        driver.stop()
        draining = asyncio.create_task(driver.drain(grace=1))
        await asyncio.sleep(0.01)
        runner.claim_gate.set()
        await asyncio.gather(polling, draining)
        assert driver.tasks == {}

    asyncio.run(scenario())

    assert sorted(runner.released) == list(range(1, 9))
    assert not runner.processed


def test_a_failed_claim_ends_a_one_shot_pass_but_not_the_daemon() -> None:
    class Broken(FakeRunner):
        async def claim(self, due: Due, **_: object) -> list[SourceState]:
            raise OSError("store unreachable")

    async def one_shot() -> None:
        await Driver(Broken(3, concurrency=1), lambda: DUE, one_shot=True).run()

    with pytest.raises(OSError, match="store unreachable"):
        asyncio.run(one_shot())

    async def daemon() -> None:
        driver = Driver(Broken(3, concurrency=1), lambda: DUE, one_shot=False)
        running = asyncio.create_task(driver.run())
        await asyncio.sleep(0.05)
        assert not running.done()  # waits for the next tick
        driver.stop()
        await running

    asyncio.run(daemon())
