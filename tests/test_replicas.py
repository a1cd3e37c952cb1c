"""Several ``ingest serve`` replicas on one PostgreSQL database (DESIGN §7): real processes,
the local server, and a loopback farm that counts every request."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from tests.conftest import write_config
from tests.feedserver import FeedServer, Reply, farm, rss
from tests.test_daemon import Serve, free_port, wait_for

pytestmark = pytest.mark.postgres

FEEDS = 300


def replica_config(folder: Path, urls: list[str], *, lease: str = "20s", **fetch: object) -> Path:
    return write_config(
        folder,
        [{"url": url} for url in urls],
        defaults={"interval": "1h"},  # due once during a test: a second fetch is a bug
        schedule={"lease": lease},
        fetch={"allow_private_networks": True, "timeout": "30s", "per_host": 4, **fetch},
        serve={"tick": "200ms", "grace": "5s"},
        log={"format": "json"},
    )


class Replicas:
    """Starts ``ingest serve`` processes on one store, each on its own port."""

    def __init__(self, folder: Path, db: str) -> None:
        self.folder = folder
        self.db = db
        self.started: list[Serve] = []

    def start(self, config: Path, count: int = 1) -> list[Serve]:
        new = [
            Serve(self.folder, self.db, config, env={"INGEST_SERVE_PORT": str(free_port())})
            for _ in range(count)
        ]
        self.started += new
        return new

    def stop(self, *replicas: Serve) -> None:
        for replica in replicas:
            replica.signal(signal.SIGTERM)
        for replica in replicas:
            assert replica.wait(30) == 0, replica.log.read_text()[-3000:]

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        engine = create_engine(self.db)
        try:
            with engine.connect() as conn:
                return [tuple(row) for row in conn.execute(text(sql))]
        finally:
            engine.dispose()

    def checked(self) -> int:
        """Sources checked so far (0 while the replicas are still creating the schema)."""
        try:
            rows = self.query("SELECT count(*) FROM sources WHERE last_checked_at IS NOT NULL")
        except ProgrammingError:
            return 0
        return int(rows[0][0])


@pytest.fixture
def replicas(tmp_path: Path, postgres_url: str) -> Iterator[Replicas]:
    group = Replicas(tmp_path, postgres_url)
    yield group
    for replica in group.started:
        if replica.process.poll() is None:
            replica.process.kill()
            replica.wait(10)


def processed_by(replica: Serve) -> int:
    return sum(1 for e in replica.events() if e["event"] == "source_processed")


def assert_store_is_complete(group: Replicas) -> None:
    """Every source checked and leased to no one; each post once, each sighting once."""
    assert group.checked() == FEEDS
    assert group.query("SELECT count(*) FROM sources WHERE lease_owner IS NOT NULL") == [(0,)]
    assert group.query("SELECT count(*), count(DISTINCT content_hash) FROM posts") == [
        (2 * FEEDS + 1, 2 * FEEDS + 1)
    ]
    assert group.query("SELECT count(*) FROM sightings") == [(3 * FEEDS,)]
    assert group.query("SELECT max(revision) FROM posts") == [(1,)]


@pytest.mark.parametrize("count", [2, 4])
def test_replicas_started_together_on_an_empty_database_share_every_source_once(
    replicas: Replicas, count: int
) -> None:
    with FeedServer() as server:
        urls = farm(server, FEEDS, delay=0.05)
        started = replicas.start(replica_config(replicas.folder, urls), count)
        wait_for(lambda: replicas.checked() == FEEDS, 90, "every source checked")
        time.sleep(1)  # several more ticks: nothing is fetched twice
        replicas.stop(*started)

    fetches = Counter(seen.path for seen in server.seen)
    assert len(fetches) == FEEDS
    assert set(fetches.values()) == {1}
    assert_store_is_complete(replicas)
    shares = [processed_by(replica) for replica in started]
    assert sum(shares) == FEEDS
    assert all(shares), shares  # every replica took part of the burst


def test_a_replica_killed_mid_pass_has_its_sources_taken_over(replicas: Replicas) -> None:
    with FeedServer() as server:
        urls = farm(server, FEEDS, delay=0.2)
        config = replica_config(replicas.folder, urls)
        doomed, survivor = replicas.start(config, 2)
        wait_for(lambda: processed_by(doomed) >= 10, 60, "the doomed replica to work")
        doomed.signal(signal.SIGSTOP)  # what it holds now is all it will ever have held
        held = replicas.query(
            f"SELECT url FROM sources WHERE lease_owner LIKE '%:{doomed.process.pid}:%'"
        )
        doomed.process.send_signal(signal.SIGKILL)
        doomed.wait(10)

        wait_for(lambda: replicas.checked() == FEEDS, 90, "every source checked")
        replicas.stop(survivor)

    assert held, "the killed replica held leases"
    fetches = Counter(seen.path for seen in server.seen)
    assert len(fetches) == FEEDS
    twice = {path for path, times in fetches.items() if times > 1}
    assert twice <= {urlsplit(str(url)).path for (url,) in held}  # only what died in flight
    assert_store_is_complete(replicas)
    taken = [e for e in survivor.events() if e["event"] == "leases_taken_over"]
    assert taken, "the survivor saw the dead replica's leases as free at once"


def test_a_replica_whose_lease_was_taken_over_cannot_save_its_stale_check(
    replicas: Replicas,
) -> None:
    with FeedServer() as server:
        document = rss("Slow", ("1", "one"), ("2", "two"))
        server.routes["/slow"] = Reply(200, document, delay=2)
        config = replica_config(replicas.folder, [server.url("/slow")], lease="2s")
        (stale,) = replicas.start(config)
        wait_for(lambda: len(server.requests_to("/slow")) == 1, 30, "the first fetch")
        stale.signal(signal.SIGSTOP)  # a replica frozen mid-fetch: alive, yet renewing nothing
        try:
            (fresh,) = replicas.start(config)
            wait_for(lambda: replicas.checked() == 1, 30, "the fresh replica's check")
        finally:
            stale.signal(signal.SIGCONT)
        wait_for(
            lambda: "lease_lost" in [e["event"] for e in stale.events()],
            30,
            "the stale replica to drop its check",
        )
        replicas.stop(stale, fresh)

    assert len(server.requests_to("/slow")) == 2
    assert processed_by(fresh) == 1
    assert replicas.query("SELECT count(*), max(revision) FROM posts") == [(2, 1)]
    assert replicas.query("SELECT last_status, lease_owner FROM sources") == [("ok", None)]
