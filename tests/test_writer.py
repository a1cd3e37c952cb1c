"""The store writer (group commit, a failing check isolated from its group) and the digest
workers that feed it."""

from __future__ import annotations

import asyncio
import multiprocessing
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import datetime
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import pytest

from ingest.digest.document import digest_feed
from ingest.errors import SourceError
from ingest.pipeline.workers import Digester
from ingest.pipeline.writer import StoreWriter
from ingest.types import Check, Digest, SourceSpec, SourceState
from storage import Store
from tests import workerjobs
from tests.builders import NOW, a_post, ok
from tests.conftest import CNBETA


def _sources(store: Store, count: int) -> list[SourceState]:
    specs = [SourceSpec(url=f"https://x.example/{i}") for i in range(count)]
    store.apply_sources(specs, origin="config", now=NOW)
    return store.load_states()


def _check(state: SourceState) -> Check:
    return Check(state, [a_post(str(state.id), f"p{state.id}")], ok(state), NOW)


def test_checks_queued_during_a_write_are_committed_together(store: Store) -> None:
    states = _sources(store, 50)
    commits: list[int] = []
    record_checks = store.record_checks

    def counted(*args: Any, **kwargs: Any) -> Any:
        commits.append(1)
        return record_checks(*args, **kwargs)

    store.record_checks = counted  # type: ignore[method-assign]
    gate = threading.Event()

    async def scenario() -> None:
        writer = StoreWriter(store)
        blocker = asyncio.create_task(writer.call(gate.wait, 10))
        await asyncio.sleep(0.05)
        records = [asyncio.create_task(writer.record(_check(s))) for s in states]
        await asyncio.sleep(0.05)
        gate.set()
        await blocker
        results = await asyncio.gather(*records)
        await asyncio.to_thread(writer.close)
        assert [sum(r.values()) if r else None for r in results] == [1] * 50

    asyncio.run(scenario())

    assert len(store.list_posts()) == 50
    assert len(commits) <= 3  # 50 checks in one or two groups, not 50 transactions


def test_a_failing_check_fails_alone_and_its_group_is_stored(store: Store) -> None:
    states = _sources(store, 10)
    gate = threading.Event()

    async def scenario() -> list[object]:
        writer = StoreWriter(store)
        blocker = asyncio.create_task(writer.call(gate.wait, 10))
        await asyncio.sleep(0.05)
        checks = [_check(s) for s in states]
        naive = datetime(2024, 1, 1)  # the store refuses naive datetimes
        checks[4] = replace(checks[4], change=replace(checks[4].change, checked_at=naive))
        records = [asyncio.create_task(writer.record(c)) for c in checks]
        await asyncio.sleep(0.05)
        gate.set()
        await blocker
        results: list[object] = await asyncio.gather(*records, return_exceptions=True)
        await asyncio.to_thread(writer.close)
        return results

    results = asyncio.run(scenario())

    assert [isinstance(r, Exception) for r in results] == [i == 4 for i in range(10)]
    assert len(store.list_posts()) == 9


def test_a_worker_that_dies_fails_only_the_document_that_killed_it() -> None:
    async def scenario() -> list[object]:
        digester = Digester(2)
        try:
            jobs = [
                digester.run(f"feed-{i}", workerjobs.digest, "die" if i == 3 else f"ok-{i}")
                for i in range(12)
            ]
            return await asyncio.gather(*jobs, return_exceptions=True)
        finally:
            digester.close()

    results = asyncio.run(scenario())

    failed = [i for i, r in enumerate(results) if isinstance(r, Exception)]
    assert failed == [3]
    assert isinstance(results[3], SourceError)
    assert results[3].source == "feed-3"
    assert [r.feed_title for r in results if isinstance(r, Digest)] == [
        f"ok-{i}" for i in range(12) if i != 3
    ]


LIMIT_S = 2.0
"""The time limit of the tests' digesters: ample for a spawned worker to start, short to wait."""


def _workers_left(before: set[BaseProcess]) -> set[BaseProcess]:
    """Worker processes started since ``before`` that still run, given a moment to die."""
    deadline = time.monotonic() + 2
    while (left := set(multiprocessing.active_children()) - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_a_digest_that_never_ends_fails_alone_and_its_worker_is_stopped(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    before = set(multiprocessing.active_children())

    async def scenario() -> tuple[float, SourceError, list[Digest]]:
        digester = Digester(2, limit_s=LIMIT_S)
        try:
            started = time.monotonic()
            hanging = asyncio.ensure_future(digester.run("hang", workerjobs.digest, "hang"))
            await asyncio.sleep(LIMIT_S / 2)
            others = asyncio.gather(
                # in the other worker when the hanging one is stopped, within its own limit;
                # ends once the gate exists
                digester.run("wait", workerjobs.digest, f"{workerjobs.WAIT_PREFIX}{gate}"),
                digester.run("queued", workerjobs.digest, "queued"),  # waiting for a worker
            )
            try:
                with pytest.raises(SourceError) as failed:
                    await hanging
                elapsed = time.monotonic() - started
            finally:
                gate.touch()  # the waiting digest may end now (and must, for close to return)
            retried = await others
            after = await asyncio.gather(
                *(digester.run(f"ok-{i}", workerjobs.digest, f"ok-{i}") for i in range(4))
            )
            return elapsed, failed.value, [*retried, *after]
        finally:
            digester.close()

    elapsed, error, digests = asyncio.run(scenario())

    assert (error.source, error.kind) == ("hang", "too_slow")
    assert error.reason == "reading this feed took more than 2 s; the worker was stopped"
    assert LIMIT_S - 0.1 < elapsed < LIMIT_S + 2  # not the hour a hostile document would take
    assert [d.feed_title for d in digests] == [
        f"{workerjobs.WAIT_PREFIX}{gate}",
        "queued",
        *(f"ok-{i}" for i in range(4)),
    ]
    assert not _workers_left(before)


def test_a_digest_that_never_ends_in_the_thread_is_abandoned_and_the_next_one_stopped() -> None:
    before = set(multiprocessing.active_children())

    async def scenario() -> list[SourceError]:
        digester = Digester(0, limit_s=LIMIT_S / 2)
        errors: list[SourceError] = []
        try:
            for source in ("first", "second"):
                with pytest.raises(SourceError) as failed:
                    await digester.run(source, workerjobs.digest, "hang")
                errors.append(failed.value)
        finally:
            digester.close()
        return errors

    first, second = asyncio.run(scenario())

    # A thread cannot be stopped: once one is lost, digests go to a worker process.
    assert first.reason == "reading this feed took more than 1 s; it was abandoned"
    assert second.reason == "reading this feed took more than 1 s; the worker was stopped"
    assert not _workers_left(before)


def test_a_digest_abandoned_in_the_thread_does_not_hold_the_process_exit() -> None:
    program = (
        "import asyncio\n"
        "from ingest.pipeline.workers import Digester\n"
        "from tests.workerjobs import digest\n"
        "digester = Digester(0, limit_s=0.1)\n"
        "try:\n"
        "    asyncio.run(digester.run('hang', digest, 'hang'))\n"
        "finally:\n"
        "    digester.close()\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=workerjobs.HANG_S / 2,
        check=False,
    )

    assert done.returncode == 1
    assert "reading this feed took more than 0.1 s; it was abandoned" in done.stderr
    assert time.monotonic() - started < 10


def test_a_document_digested_in_a_worker_process_gives_the_same_posts() -> None:
    document = CNBETA.read_bytes()
    spec = SourceSpec(url="https://www.cnbeta.com/backend.php", categories=("新媒体",))

    async def digest_with(workers: int) -> Digest:
        digester = Digester(workers)
        try:
            return await digester.run(
                spec.url, digest_feed, document, spec=spec, comments=True, now=NOW
            )
        finally:
            digester.close()

    in_process, in_worker = asyncio.run(digest_with(0)), asyncio.run(digest_with(1))

    assert in_worker.posts
    assert in_worker == in_process
