"""``ingest serve`` against a local HTTP server: polling, endpoints, signals, restarts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ingest.config import Settings, load_settings
from ingest.types import SourceSpec
from scheduler.daemon import Daemon
from storage import open_store
from tests.conftest import write_config
from tests.feedserver import FeedServer, Reply, Seen, rss

INGEST = str(Path(sys.executable).parent / "ingest")
FEED = rss("Daemon", ("1", "one"), ("2", "two"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float = 15, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def daemon_config(folder: Path, urls: list[str], port: int, **serve: Any) -> Path:
    return write_config(
        folder,
        [{"url": url} for url in urls],
        defaults={"interval": "1s"},
        schedule={"min_interval": "1s"},
        fetch={"allow_private_networks": True, "timeout": "10s"},
        serve={"port": port, "tick": "200ms", "grace": "5s", **serve},
    )


def serve_until(
    settings: Settings, sqlite_url: str, ready: Callable[[], bool], what: str, *paths: str
) -> dict[str, tuple[int, str]]:
    """Run the daemon over the store at ``sqlite_url`` until ``ready`` (``what`` names it in a
    timeout), then ask it for each of ``paths``, stop it, and return its answers."""
    store = open_store(sqlite_url)
    daemon = Daemon(store, settings)
    answers: dict[str, tuple[int, str]] = {}

    async def scenario() -> None:
        task = asyncio.create_task(daemon.run())
        await asyncio.to_thread(wait_for, ready, 20, what)
        for path in paths:
            url = f"http://127.0.0.1:{settings.serve.port}{path}"
            answers[path] = await asyncio.to_thread(get, url)
        daemon.stop()
        await task

    try:
        asyncio.run(scenario())
    finally:
        store.close()
    return answers


def test_the_daemon_polls_stores_repolls_conditionally_and_reports(
    tmp_path: Path, sqlite_url: str
) -> None:
    with FeedServer() as server:

        def conditional(seen: Seen) -> Reply:
            if seen.headers.get("if-none-match") == '"v1"':
                return Reply(304)
            return Reply(200, FEED, {"ETag": '"v1"'})

        server.routes["/feed"] = conditional
        settings = load_settings(
            daemon_config(tmp_path, [server.url("/feed")], free_port()), env={}
        )
        seen = serve_until(
            settings,
            sqlite_url,
            lambda: len(server.requests_to("/feed")) >= 3,
            "three polls",
            "/healthz",
            "/metrics",
        )

    requests = server.requests_to("/feed")
    assert "if-none-match" not in requests[0].headers
    assert all(r.headers.get("if-none-match") == '"v1"' for r in requests[1:])
    assert seen["/healthz"][0] == 200
    assert seen["/healthz"][1].startswith("ok: last tick")
    status, text = seen["/metrics"]
    assert status == 200
    assert metric(text, 'ingest_fetches_total{outcome="ok"}') == 1
    assert metric(text, 'ingest_fetches_total{outcome="not_modified"}') >= 1
    assert metric(text, 'ingest_posts_total{change="new"}') == 2
    assert metric(text, "ingest_fetch_duration_seconds_count") >= 2
    assert metric(text, "ingest_sources_failing") == 0
    assert metric(text, "ingest_last_successful_tick_timestamp_seconds") > time.time() - 60
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
        assert conn.execute("SELECT count(*) FROM posts").fetchone() == (2,)


def test_healthz_is_503_when_the_scheduler_stops_ticking(tmp_path: Path, sqlite_url: str) -> None:
    settings = load_settings(daemon_config(tmp_path, [], free_port()), env={})
    store = open_store(sqlite_url)
    daemon = Daemon(store, settings)
    try:
        assert daemon.health() == (False, "starting: no tick yet")
        daemon.last_tick = datetime(2020, 1, 1, tzinfo=UTC)
        healthy, reason = daemon.health()
        assert not healthy
        assert reason.startswith("no successful tick for")
    finally:
        store.close()


class Serve:
    """``ingest serve`` as a real process, logging to a file."""

    def __init__(
        self, folder: Path, db: str, config: Path, env: dict[str, str] | None = None
    ) -> None:
        self.log = folder / f"serve-{time.monotonic_ns()}.log"
        self._out = self.log.open("w")
        self.process = subprocess.Popen(
            [INGEST, "--db", db, "--config", str(config), "serve"],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    def events(self) -> list[dict[str, Any]]:
        return [
            json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")
        ]

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self._out.close()


@pytest.fixture
def serve_factory(tmp_path: Path, sqlite_url: str) -> Iterator[Callable[[Path], Serve]]:
    started: list[Serve] = []

    def start(config: Path) -> Serve:
        serve = Serve(tmp_path, sqlite_url, config)
        started.append(serve)
        return serve

    yield start
    for serve in started:
        if serve.process.poll() is None:
            serve.process.kill()
            serve.wait(10)


def _posts(db_url: str) -> list[tuple[str, int]]:
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return conn.execute("SELECT title, revision FROM posts ORDER BY title").fetchall()


def test_sigterm_during_a_slow_fetch_finishes_it_and_exits_0(
    tmp_path: Path, sqlite_url: str, serve_factory: Callable[[Path], Serve]
) -> None:
    with FeedServer() as server:
        server.routes["/slow"] = Reply(200, FEED, delay=2)
        config = daemon_config(tmp_path, [server.url("/slow")], free_port())
        serve = serve_factory(config)
        wait_for(lambda: bool(server.requests_to("/slow")), what="the slow fetch to start")

        started = time.monotonic()
        serve.signal(signal.SIGTERM)
        code = serve.wait(15)

        assert code == 0
        assert time.monotonic() - started < 5 + 2  # within the grace period
        assert _posts(sqlite_url) == [("Daemon 1", 1), ("Daemon 2", 1)]
        assert [e["event"] for e in serve.events()][-1] == "daemon_stopped"

        server.routes["/slow"] = Reply(200, FEED)
        again = serve_factory(config)
        wait_for(lambda: len(server.requests_to("/slow")) >= 2, what="the restart to poll")
        again.signal(signal.SIGTERM)
        assert again.wait(15) == 0
    assert _posts(sqlite_url) == [("Daemon 1", 1), ("Daemon 2", 1)]


def test_a_fetch_longer_than_the_grace_period_is_cancelled_and_released(
    tmp_path: Path, sqlite_url: str, serve_factory: Callable[[Path], Serve]
) -> None:
    with FeedServer() as server:
        server.routes["/slow"] = Reply(200, FEED, delay=30)
        config = daemon_config(tmp_path, [server.url("/slow")], free_port(), grace="1s")
        serve = serve_factory(config)
        wait_for(lambda: bool(server.requests_to("/slow")), what="the slow fetch to start")

        serve.signal(signal.SIGTERM)

        assert serve.wait(10) == 0
        assert "sources_cancelled" in [e["event"] for e in serve.events()]
        with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
            assert conn.execute("SELECT lease_owner FROM sources").fetchall() == [(None,)]
        assert _posts(sqlite_url) == []

        server.routes["/slow"] = Reply(200, FEED)
        again = serve_factory(config)
        wait_for(lambda: len(server.requests_to("/slow")) >= 2, what="the restart to poll")
        wait_for(lambda: len(_posts(sqlite_url)) == 2, what="the posts")
        again.signal(signal.SIGTERM)
        assert again.wait(15) == 0
    assert _posts(sqlite_url) == [("Daemon 1", 1), ("Daemon 2", 1)]


def test_a_second_signal_exits_at_once_and_leaves_the_store_sound(
    tmp_path: Path, sqlite_url: str, serve_factory: Callable[[Path], Serve]
) -> None:
    with FeedServer() as server:
        server.routes["/hang"] = Reply(hang=True)
        config = daemon_config(tmp_path, [server.url("/hang")], free_port(), grace="30s")
        serve = serve_factory(config)
        wait_for(lambda: bool(server.requests_to("/hang")), what="the fetch to start")

        serve.signal(signal.SIGTERM)
        wait_for(lambda: "stopping" in [e["event"] for e in serve.events()], what="stop")
        started = time.monotonic()
        serve.signal(signal.SIGINT)
        code = serve.wait(10)

    assert code == 128 + signal.SIGINT  # exits at once, as for any forced exit
    assert time.monotonic() - started < 5
    assert _posts(sqlite_url) == []


def test_a_restart_keeps_schedules_and_backoffs(
    tmp_path: Path, sqlite_url: str, serve_factory: Callable[[Path], Serve]
) -> None:
    with FeedServer() as server:
        server.routes["/hourly"] = Reply(200, FEED)
        server.routes["/broken"] = Reply(500, b"down")
        config = write_config(
            tmp_path,
            [
                {"url": server.url("/hourly"), "interval": "1h"},
                {"url": server.url("/broken"), "interval": "1h"},
            ],
            fetch={"allow_private_networks": True},
            serve={"port": free_port(), "tick": "200ms"},
        )
        first = serve_factory(config)
        wait_for(
            lambda: bool(server.requests_to("/hourly")) and bool(server.requests_to("/broken")),
            what="both polled",
        )
        time.sleep(1)  # several ticks: nothing is polled twice
        first.signal(signal.SIGTERM)
        assert first.wait(15) == 0

        second = serve_factory(config)
        wait_for(lambda: "daemon_started" in [e["event"] for e in second.events()], what="restart")
        time.sleep(1.5)
        second.signal(signal.SIGTERM)
        assert second.wait(15) == 0

    assert len(server.requests_to("/hourly")) == 1
    assert len(server.requests_to("/broken")) == 1
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
        errors = conn.execute("SELECT error_count FROM sources ORDER BY id").fetchall()
    assert errors == [(0,), (1,)]


def test_sources_added_while_the_daemon_runs_are_picked_up(
    tmp_path: Path, sqlite_url: str, serve_factory: Callable[[Path], Serve]
) -> None:
    with FeedServer() as server:
        server.routes["/later"] = Reply(200, FEED)
        config = daemon_config(tmp_path, [], free_port())
        serve = serve_factory(config)
        wait_for(lambda: "daemon_started" in [e["event"] for e in serve.events()], what="start")

        store = open_store(sqlite_url)
        try:
            store.apply_sources(
                [SourceSpec(url=server.url("/later"))], origin="cli", now=datetime.now(UTC)
            )
        finally:
            store.close()

        wait_for(lambda: bool(server.requests_to("/later")), what="the new source to be polled")
        serve.signal(signal.SIGTERM)
        assert serve.wait(15) == 0
    assert len(_posts(sqlite_url)) == 2
