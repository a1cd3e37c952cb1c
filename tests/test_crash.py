"""``ingest run`` killed or interrupted as a user would: the next run loses nothing and waits
for nothing (DESIGN §7). Real processes against a loopback farm that counts requests."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

from scheduler.lease import this_process
from tests.conftest import Cli, write_config
from tests.feedserver import FeedServer, Reply, farm
from tests.test_daemon import INGEST, Serve, daemon_config, free_port, wait_for

FEEDS = 300


def run_config(folder: Path, urls: list[str], **serve: str) -> Path:
    return write_config(
        folder,
        [{"url": url} for url in urls],
        fetch={"allow_private_networks": True, "timeout": "10s", "per_host": 8},
        serve={"grace": "1s", **serve},
        log={"format": "json"},
    )


class Started:
    """``ingest run`` as a background process, its output in files (a pipe nobody reads would
    fill up and stall it)."""

    def __init__(self, folder: Path, db: str, config: Path, *args: str) -> None:
        self.stdout = folder / "run.out"
        self.stderr = folder / "run.err"
        with self.stdout.open("w") as out, self.stderr.open("w") as err:
            self.process = subprocess.Popen(
                [INGEST, "--db", db, "--config", str(config), "run", *args],
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own process group, as a terminal's job has
            )

    def finish(self) -> tuple[str, str]:
        self.process.wait(30)
        return self.stdout.read_text(), self.stderr.read_text()


def ingest_run(db: str, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [INGEST, "--db", db, "--config", str(config), "run", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


Contents = tuple[set[tuple[str, str, int]], set[tuple[str, str, str]]]


def contents(db: str) -> Contents:
    """(posts, sightings) as comparable sets; asserts the file is sound and no lease is left."""
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute(
            "SELECT count(*) FROM sources WHERE lease_owner IS NOT NULL"
        ).fetchone() == (0,)
        posts = set(conn.execute("SELECT content_hash, title, revision FROM posts"))
        sightings = {
            (urlsplit(url).path, key, content_hash)
            for url, key, content_hash in conn.execute(
                "SELECT s.url, g.entry_key, p.content_hash FROM sightings g "
                "JOIN sources s ON s.id = g.source_id JOIN posts p ON p.id = g.post_id"
            )
        }
    return posts, sightings


def unchecked(db: str) -> int:
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM sources WHERE last_checked_at IS NULL"
        ).fetchone()
    return int(count)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> Contents:
    """What one uninterrupted ``ingest run`` over the farm stores."""
    folder = tmp_path_factory.mktemp("clean")
    db = f"sqlite:///{folder / 'ingest.db'}"
    with FeedServer() as server:
        urls = farm(server, FEEDS)
        done = ingest_run(db, run_config(folder, urls))
    assert done.returncode == 0, done.stdout + done.stderr
    return contents(db)


SLOW_TAIL = 15


@pytest.fixture
def slow_farm() -> Iterator[tuple[FeedServer, list[str]]]:
    """The farm, its last ``SLOW_TAIL`` feeds (claimed last) taking 2 s each: a run killed near
    its end still has work in flight, however fast the machine."""
    with FeedServer() as server:
        urls = farm(server, FEEDS, delay=0.02)
        for url in urls[-SLOW_TAIL:]:
            route = server.routes[urlsplit(url).path]
            assert isinstance(route, Reply)
            server.routes[urlsplit(url).path] = replace(route, delay=2)
        yield server, urls


@pytest.mark.parametrize("after_requests", [1, FEEDS // 2, FEEDS - 10])
def test_a_run_killed_at_any_moment_costs_the_next_run_nothing(
    tmp_path: Path,
    *,
    sqlite_url: str,
    slow_farm: tuple[FeedServer, list[str]],
    clean_run: Contents,
    after_requests: int,
) -> None:
    server, urls = slow_farm
    config = run_config(tmp_path, urls)
    killed = Started(tmp_path, sqlite_url, config, "--all")
    wait_for(lambda: len(server.seen) >= after_requests, 60, f"{after_requests} requests")
    killed.process.send_signal(signal.SIGKILL)
    killed.finish()
    left = unchecked(sqlite_url)
    before = len(server.seen)

    started = time.monotonic()
    again = ingest_run(sqlite_url, config)

    assert again.returncode == 0, again.stdout + again.stderr
    assert time.monotonic() - started < 30  # no lease of the dead run is waited for
    assert left > 0
    assert f"sources: {left} ok, 0 failed" in again.stdout
    assert len(server.seen) - before == left  # exactly the sources the killed run did not save
    assert contents(sqlite_url) == clean_run


def _our_processes(root: psutil.Process) -> list[psutil.Process]:
    return [root, *root.children(recursive=True)]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_run_summarizes_releases_and_leaves_no_process(
    tmp_path: Path,
    *,
    sqlite_url: str,
    slow_farm: tuple[FeedServer, list[str]],
    clean_run: Contents,
    signum: signal.Signals,
    code: int,
) -> None:
    server, urls = slow_farm
    config = run_config(tmp_path, urls)
    interrupted = Started(tmp_path, sqlite_url, config)
    wait_for(lambda: len(server.seen) >= 60, 60, "60 requests")
    processes = _our_processes(psutil.Process(interrupted.process.pid))
    assert len(processes) > 1  # the parsing workers (and multiprocessing's helper) run

    if signum == signal.SIGINT:  # Ctrl-C: the terminal signals the whole process group
        os.killpg(interrupted.process.pid, signum)
    else:  # docker stop, kill: the main process alone
        interrupted.process.send_signal(signum)
    stdout, stderr = interrupted.finish()

    assert interrupted.process.returncode == code, stdout + stderr
    assert f"interrupted by {signum.name}" in stdout
    assert "sources: " in stdout
    assert "Traceback" not in stderr
    wait_for(
        lambda: not any(p.is_running() and p.status() != "zombie" for p in processes),
        5,
        "every process of the run to end",
    )
    left = unchecked(sqlite_url)
    assert left > 0
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
        assert conn.execute(
            "SELECT count(*) FROM sources WHERE lease_owner IS NOT NULL"
        ).fetchone() == (0,)

    before = len(server.seen)
    again = ingest_run(sqlite_url, config)
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(server.seen) - before == left
    assert contents(sqlite_url) == clean_run


def test_a_run_says_which_live_process_holds_the_sources_it_skipped(
    tmp_path: Path, sqlite_url: str
) -> None:
    with FeedServer() as server:
        server.routes["/hang"] = Reply(hang=True)
        config = daemon_config(tmp_path, [server.url("/hang")], free_port())
        daemon = Serve(tmp_path, sqlite_url, config)
        try:
            wait_for(lambda: bool(server.requests_to("/hang")), what="the daemon's fetch")
            cli = Cli(sqlite_url, config)

            run = cli("run", "--all")
            stats = cli("stats")
            as_json = cli("stats", "--json").json()
        finally:
            daemon.signal(signal.SIGTERM)
            daemon.wait(20)

    owner = f":{daemon.process.pid}:"
    assert run.exit_code == 0
    assert "skipped: 1 source leased to" in run.stdout
    assert owner in run.stdout
    assert "nothing is due" not in run.stdout
    assert f"being checked by {this_process().host}{owner}" in stats.stdout
    (lease,) = as_json["leases"]
    assert owner in lease["owner"]
    assert lease["source_count"] == 1
    assert owner in as_json["sources"][0]["lease_owner"]
