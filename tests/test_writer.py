"""The store writer (group commit, a failing check isolated from its group) and the conversion
workers that feed it."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from datetime import datetime

from sqlalchemy import event

from ingest.convert import digest_feed
from ingest.errors import SourceError
from ingest.types import Digest, FeedState, SourceSpec
from ingest.workers import Converter
from ingest.writer import StoreWriter
from storage.apply import Check
from storage.engine import Store
from storage.entries import list_posts
from storage.feeds import apply_sources, load_states
from tests import workerjobs
from tests.builders import NOW, a_post, ok
from tests.conftest import CNBETA


def _sources(store: Store, count: int) -> list[FeedState]:
    specs = [SourceSpec(url=f"https://x.example/{i}") for i in range(count)]
    apply_sources(store, specs, origin="config", now=NOW)
    return load_states(store)


def _check(state: FeedState) -> Check:
    return Check(state, [a_post(str(state.id), f"p{state.id}")], ok(state), NOW)


def test_checks_queued_during_a_write_are_committed_together(store: Store) -> None:
    states = _sources(store, 50)
    commits: list[int] = []
    event.listen(store.engine, "commit", lambda conn: commits.append(1))
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

    assert len(list_posts(store)) == 50
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
    assert len(list_posts(store)) == 9


def test_a_worker_that_dies_fails_only_the_document_that_killed_it() -> None:
    async def scenario() -> list[object]:
        converter = Converter(2)
        try:
            jobs = [
                converter.run(f"feed-{i}", workerjobs.convert, "die" if i == 3 else f"ok-{i}")
                for i in range(12)
            ]
            return await asyncio.gather(*jobs, return_exceptions=True)
        finally:
            converter.close()

    results = asyncio.run(scenario())

    failed = [i for i, r in enumerate(results) if isinstance(r, Exception)]
    assert failed == [3]
    assert isinstance(results[3], SourceError)
    assert results[3].source == "feed-3"
    assert [r.feed_title for r in results if isinstance(r, Digest)] == [
        f"ok-{i}" for i in range(12) if i != 3
    ]


def test_a_document_converted_in_a_worker_process_gives_the_same_posts() -> None:
    document = CNBETA.read_bytes()
    spec = SourceSpec(url="https://www.cnbeta.com/backend.php", categories=("新媒体",))

    async def convert(workers: int) -> Digest:
        converter = Converter(workers)
        try:
            return await converter.run(
                spec.url, digest_feed, document, spec=spec, comments=True, now=NOW
            )
        finally:
            converter.close()

    in_process, in_worker = asyncio.run(convert(0)), asyncio.run(convert(1))

    assert in_worker.posts
    assert in_worker == in_process
