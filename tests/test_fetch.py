"""Fetching against a real HTTP server on 127.0.0.1: statuses, limits, hostile responses."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import socket
import ssl
import subprocess
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import brotli
import httpx
import pytest
import trustme

from ingest import __version__
from ingest.config import Settings, load_settings
from ingest.errors import ErrorKind
from ingest.fetch.client import Fetcher
from ingest.types import (
    Failed,
    FetchResult,
    Gone,
    RetryLater,
    RunSummary,
    SourceSpec,
    SourceState,
    SourceStatus,
)
from scheduler.driver import run_once
from storage import Store, open_store
from tests.builders import NOW
from tests.conftest import CNBETA, write_config
from tests.feedserver import (
    FeedServer,
    FloodServer,
    Reply,
    Seen,
    endless,
    gzip_bomb,
    needs_login,
    rss,
)

FEED = rss("Post", ("1", "one"), ("2", "two"))


class Harness:
    """One store, a config written per call, passes run like ``ingest run``."""

    def __init__(self, folder: Path, store: Store) -> None:
        self.folder = folder
        self.store = store

    def settings(self, *urls: str, **fetch: Any) -> Settings:
        fetch = {"allow_private_networks": True, "timeout": "5s", **fetch}
        path = write_config(self.folder, [{"url": u} for u in urls], fetch=fetch)
        return load_settings(path, env={})

    def run(self, settings: Settings, *, force: bool = True) -> RunSummary:
        return asyncio.run(run_once(self.store, settings, force=force))

    def state(self, source_id: int = 1) -> SourceState:
        (state,) = self.store.load_states([source_id])
        return state


@pytest.fixture
def harness(tmp_path: Path, sqlite_url: str) -> Iterator[Harness]:
    store = open_store(sqlite_url)
    yield Harness(tmp_path, store)
    store.close()


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as running:
        yield running


def test_a_304_costs_no_parsing_and_no_post_writes(server: FeedServer, harness: Harness) -> None:
    def conditional(seen: Seen) -> Reply:
        if seen.headers.get("if-none-match") == '"v1"':
            return Reply(304)
        return Reply(200, FEED, {"ETag": '"v1"', "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"})

    server.routes["/feed"] = conditional
    settings = harness.settings(server.url("/feed"))

    first = harness.run(settings)
    second = harness.run(settings)

    assert [o.status for o in first.outcomes] == ["ok"]
    assert first.outcomes[0].counts == {"new": 2}
    assert [o.status for o in second.outcomes] == ["not_modified"]
    assert second.outcomes[0].counts == {}
    last = server.requests_to("/feed")[-1].headers
    assert last["if-none-match"] == '"v1"'
    assert last["if-modified-since"] == "Mon, 01 Jan 2024 00:00:00 GMT"
    assert harness.state().etag == '"v1"'


def test_answers_without_a_document_leave_the_connection_open_for_the_next_request(
    server: FeedServer, harness: Harness
) -> None:
    """A pass of 304s (a redirect, a small error page) reuses its connections: a server is
    not made to accept, and over HTTPS to handshake, one connection per feed."""

    def conditional(seen: Seen) -> Reply:
        if seen.headers.get("if-none-match") == '"v1"':
            return Reply(304, headers={"ETag": '"v1"'})
        return Reply(200, FEED, {"ETag": '"v1"'})

    paths = [f"/feed{n}" for n in range(6)]
    for path in paths:
        server.routes[path] = conditional
    server.routes["/moved"] = Reply(302, b"see elsewhere", {"Location": "/feed0"})
    server.routes["/missing"] = Reply(404, b"not here")
    urls = [server.url(path) for path in [*paths, "/moved", "/missing"]]
    settings = harness.settings(*urls, per_host=1)
    harness.run(settings)

    before = server.connections
    second = harness.run(settings)

    assert [o.status for o in second.outcomes].count(SourceStatus.NOT_MODIFIED) == 7
    assert server.connections - before == 1


def test_over_https_a_pass_of_304s_makes_one_handshake(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))  # what the operator sets

    def conditional(seen: Seen) -> Reply:
        if seen.headers.get("if-none-match") == '"v1"':
            return Reply(304, headers={"ETag": '"v1"'})
        return Reply(200, FEED, {"ETag": '"v1"'})

    with FeedServer(tls=context) as secure:
        paths = [f"/feed{n}" for n in range(4)]
        for path in paths:
            secure.routes[path] = conditional
        settings = harness.settings(*(secure.url(path) for path in paths), per_host=1)
        first = harness.run(settings)
        before = secure.connections
        second = harness.run(settings)

    assert [o.status for o in first.outcomes] == [SourceStatus.OK] * 4
    assert [o.status for o in second.outcomes] == [SourceStatus.NOT_MODIFIED] * 4
    assert secure.connections - before == 1


@pytest.mark.parametrize(
    "validator", [{"ETag": '"same"'}, {"Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}]
)
def test_a_200_with_the_stored_validators_is_not_parsed(
    server: FeedServer, harness: Harness, validator: dict[str, str]
) -> None:
    server.routes["/feed"] = Reply(200, FEED, validator)
    settings = harness.settings(server.url("/feed"))
    harness.run(settings)
    server.routes["/feed"] = Reply(200, b"<html>would fail to parse</html>", validator)

    again = harness.run(settings)

    assert [o.status for o in again.outcomes] == ["not_modified"]


def test_a_permanent_redirect_moves_the_source_after_two_checks(
    server: FeedServer, harness: Harness
) -> None:
    server.routes["/old"] = Reply(301, headers={"Location": "/new"})
    server.routes["/new"] = Reply(200, FEED)
    settings = harness.settings(server.url("/old"))

    harness.run(settings)
    once = harness.state()
    harness.run(settings)
    twice = harness.state()
    harness.run(settings)  # the config still names /old: the moved source is not added again

    assert once.url == server.url("/old")
    assert (once.redirect_url, once.redirect_count) == (server.url("/new"), 1)
    assert twice.url == server.url("/new")
    assert len(harness.store.load_states()) == 1
    assert len(server.requests_to("/old")) == 2  # the third pass went straight to /new
    assert len(server.requests_to("/new")) == 3


def test_a_temporary_redirect_is_followed_and_changes_nothing(
    server: FeedServer, harness: Harness
) -> None:
    server.routes["/feed"] = Reply(302, headers={"Location": "/elsewhere"})
    server.routes["/elsewhere"] = Reply(200, FEED)
    settings = harness.settings(server.url("/feed"))

    harness.run(settings)
    harness.run(settings)

    state = harness.state()
    assert state.url == server.url("/feed")
    assert state.redirect_url is None
    assert len(harness.run(settings).outcomes) == 1


def _logged_in(url: str) -> str:
    return url.replace("://", "://user:s3cret@", 1)


def test_credentials_in_the_url_go_in_an_authorization_header_not_in_the_request(
    server: FeedServer, harness: Harness
) -> None:
    server.routes["/feed?token=t0p"] = needs_login("user", "s3cret", Reply(200, FEED))

    (outcome,) = harness.run(harness.settings(_logged_in(server.url("/feed?token=t0p")))).outcomes

    assert outcome.status == "ok"
    (seen,) = server.seen
    assert seen.path == "/feed?token=t0p"  # the request line: no user:password@
    assert seen.headers["host"] == f"127.0.0.1:{server.port}"


def test_credentials_follow_a_move_within_the_origin_and_stay_with_the_moved_source(
    server: FeedServer, harness: Harness
) -> None:
    server.routes["/old"] = Reply(301, headers={"Location": server.url("/new")})
    server.routes["/new"] = needs_login("user", "s3cret", Reply(200, FEED))
    settings = harness.settings(_logged_in(server.url("/old")))

    checks = [harness.run(settings), harness.run(settings), harness.run(settings)]

    assert [o.status for check in checks for o in check.outcomes] == ["ok", "moved", "ok"]
    assert harness.state().url == _logged_in(server.url("/new"))
    assert len(server.requests_to("/old")) == 2  # the third check went straight to /new


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.2:{port}/feed",
        "//127.0.0.2:{port}/feed",
        "http://user:s3cret@127.0.0.2:{port}/feed",
    ],
    ids=["absolute", "scheme-relative", "naming-the-credentials"],
)
def test_credentials_are_never_sent_to_another_origin(
    server: FeedServer, harness: Harness, location: str
) -> None:
    with FeedServer("127.0.0.2") as other:
        other.routes["/feed"] = Reply(200, FEED)
        server.routes["/feed"] = Reply(302, headers={"Location": location.format(port=other.port)})

        (outcome,) = harness.run(harness.settings(_logged_in(server.url("/feed")))).outcomes

        assert outcome.status == "ok"
        (first,) = server.seen
        (redirected,) = other.seen
    assert first.headers["authorization"].startswith("Basic ")
    assert "authorization" not in redirected.headers


def test_410_disables_the_source_and_run_all_leaves_it_alone(
    server: FeedServer, harness: Harness
) -> None:
    server.routes["/feed"] = Reply(410, b"gone")
    settings = harness.settings(server.url("/feed"))

    first = harness.run(settings)
    second = harness.run(settings)

    assert [o.status for o in first.outcomes] == ["gone"]
    state = harness.state()
    assert not state.enabled
    assert state.disabled_reason is not None
    assert "410 Gone" in state.disabled_reason
    assert second.outcomes == []
    assert len(server.requests_to("/feed")) == 1


def _retry_after(form: str) -> str:
    if form == "seconds":
        return "120"
    return email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_retry_after_is_honoured_even_by_run_all(
    server: FeedServer, harness: Harness, status: int, form: str
) -> None:
    server.routes["/feed"] = Reply(status, b"slow down", {"Retry-After": _retry_after(form)})
    settings = harness.settings(server.url("/feed"))

    first = harness.run(settings)
    second = harness.run(settings)

    assert [o.status for o in first.outcomes] == ["retry_later"]
    state = harness.state()
    assert state.retry_after_until is not None
    wait = (state.retry_after_until - datetime.now(UTC)).total_seconds()
    assert 100 < wait <= 121, form
    assert state.next_check_at is not None
    assert state.next_check_at >= state.retry_after_until
    assert second.outcomes == []


def test_retry_after_is_bounded(server: FeedServer, harness: Harness) -> None:
    server.routes["/feed"] = Reply(429, headers={"Retry-After": str(365 * 86400)})
    harness.run(harness.settings(server.url("/feed")))
    until = harness.state().retry_after_until
    assert until is not None
    assert until - datetime.now(UTC) <= timedelta(days=7)


def test_a_failing_server_backs_off_then_recovers(server: FeedServer, harness: Harness) -> None:
    server.routes["/feed"] = Reply(500, b"oops")
    settings = harness.settings(server.url("/feed"))

    harness.run(settings)
    one = harness.state()
    harness.run(settings)
    two = harness.state()
    server.routes["/feed"] = Reply(200, FEED)
    harness.run(settings)
    healthy = harness.state()

    assert (one.error_count, two.error_count) == (1, 2)
    assert one.next_check_at is not None
    assert two.next_check_at is not None
    assert one.last_checked_at is not None
    assert two.last_checked_at is not None
    first_wait = one.next_check_at - one.last_checked_at
    second_wait = two.next_check_at - two.last_checked_at
    assert timedelta(minutes=25) < first_wait < timedelta(minutes=35)  # one interval, jittered
    assert second_wait > first_wait * 1.5  # doubled
    assert healthy.error_count == 0
    with harness.store.database.read() as conn:
        (last_error,) = conn.exec_driver_sql("SELECT last_error FROM sources").one()
    assert last_error is None


def test_a_server_that_never_answers_ends_the_run_within_the_timeout(
    server: FeedServer, harness: Harness
) -> None:
    server.routes["/feed"] = Reply(hang=True)
    settings = harness.settings(server.url("/feed"), timeout="1s", read_timeout="10s")

    started = time.monotonic()
    summary = harness.run(settings)

    assert time.monotonic() - started < 5
    (outcome,) = summary.outcomes
    assert outcome.status == "error"
    assert outcome.error is not None
    assert "within 1s" in outcome.error


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (Reply(200, endless), "endless"),
        (Reply(200, gzip_bomb(), {"Content-Encoding": "gzip"}), "gzip bomb"),
    ],
)
def test_oversized_bodies_are_cut_off_at_max_body_with_bounded_memory(
    server: FeedServer, harness: Harness, reply: Reply, why: str
) -> None:
    server.routes["/feed"] = reply
    settings = harness.settings(server.url("/feed"), max_body="1MiB")

    tracemalloc.start()
    try:
        summary = harness.run(settings)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    (outcome,) = summary.outcomes
    assert outcome.error is not None
    assert "larger than 1048576 bytes" in outcome.error, why
    assert peak < 48 * 1024 * 1024, why


PEAK_RSS_RUN = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))  # a runaway fails, not the machine
from ingest.cli.launch import main
try:
    main()
finally:
    print("peak_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""
"""``ingest ARGS...`` in a process of its own, reporting its peak resident memory on stderr."""


def test_servers_flooding_endless_bodies_leave_the_run_within_bounded_memory(
    tmp_path: Path,
) -> None:
    # Memory is bounded by max_body only if the socket is read no faster than the body is
    # consumed: these servers answer before they are asked, as fast as loopback goes.
    with FloodServer() as flood:
        sources = [{"url": flood.url(f"/feed{n}")} for n in range(6)]
        config = write_config(
            tmp_path, sources, fetch={"allow_private_networks": True, "max_body": "4MiB"}
        )
        db = f"sqlite:///{tmp_path / 'ingest.db'}"
        done = subprocess.run(
            [sys.executable, "-c", PEAK_RSS_RUN, "--db", db, "--config", str(config), "run"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert done.stdout.count("response is larger than 4194304 bytes") == 6, done.stderr
    peak_mib = int(done.stderr.rsplit("peak_kib", 1)[1]) // 1024
    # About 140 MiB when reads keep pace with the body (256 seen once, in a full suite run);
    # 860 MiB to the 2 GiB address-space cap when they do not.
    assert peak_mib < 384


def _deflate_raw(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", gzip.compress(FEED)),
        ("gzip", gzip.compress(FEED[:100]) + gzip.compress(FEED[100:])),  # two members
        ("deflate", zlib.compress(FEED)),
        ("deflate", _deflate_raw(FEED)),
        ("br", brotli.compress(FEED)),
    ],
    ids=["gzip", "gzip-members", "deflate-zlib", "deflate-raw", "brotli"],
)
def test_compressed_bodies_are_decoded(
    server: FeedServer, harness: Harness, encoding: str, body: bytes
) -> None:
    server.routes["/feed"] = Reply(200, body, {"Content-Encoding": encoding})
    (outcome,) = harness.run(harness.settings(server.url("/feed"))).outcomes
    assert outcome.counts == {"new": 2}


def test_a_corrupt_gzip_body_is_an_error(server: FeedServer, harness: Harness) -> None:
    server.routes["/feed"] = Reply(200, b"\x1f\x8b\x08garbage", {"Content-Encoding": "gzip"})
    (outcome,) = harness.run(harness.settings(server.url("/feed"))).outcomes
    assert outcome.error is not None
    assert "gzip body is corrupt" in outcome.error


def test_an_html_page_is_a_failure_with_backoff(server: FeedServer, harness: Harness) -> None:
    server.routes["/feed"] = Reply(200, b"<!doctype html><html><body>Welcome</body></html>")
    summary = harness.run(harness.settings(server.url("/feed")))
    (outcome,) = summary.outcomes
    assert outcome.error is not None
    assert "HTML page" in outcome.error
    assert harness.state().error_count == 1


def test_a_redirect_loop_is_an_error(server: FeedServer, harness: Harness) -> None:
    server.routes["/a"] = Reply(302, headers={"Location": "/b"})
    server.routes["/b"] = Reply(302, headers={"Location": "/a"})
    (outcome,) = harness.run(harness.settings(server.url("/a"))).outcomes
    assert outcome.error is not None
    assert "redirects" in outcome.error


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("data:text/html,<p>hi</p>", "redirected to a Location that cannot be fetched"),
        ("http:\\\\evil.example\\feed", "redirected to a Location that cannot be fetched"),
        ("http://0177.0.0.1/feed", "Invalid URL in location header: Invalid IPv4 address"),
    ],
)
def test_a_redirect_to_an_unusable_location_fails_the_feed_as_bad_input(
    server: FeedServer, harness: Harness, location: str, message: str
) -> None:
    server.routes["/feed"] = Reply(302, headers={"Location": location})

    (outcome,) = harness.run(harness.settings(server.url("/feed"))).outcomes

    assert outcome.error is not None
    assert message in outcome.error
    assert "internal error" not in outcome.error
    assert harness.state().error_count == 1


def test_a_stored_url_httpx_cannot_parse_fails_the_feed_as_bad_input(harness: Harness) -> None:
    settings = harness.settings()
    harness.store.apply_sources([SourceSpec(url="http://0177.0.0.1/feed")], origin="cli", now=NOW)

    (outcome,) = harness.run(settings).outcomes

    assert outcome.error == "not a valid URL (Invalid IPv4 address: '0177.0.0.1')"


def test_a_redirect_to_a_private_address_is_refused(server: FeedServer, harness: Harness) -> None:
    with FeedServer("127.0.0.2") as private:
        private.routes["/secret"] = Reply(200, FEED)
        server.routes["/feed"] = Reply(302, headers={"Location": private.url("/secret")})
        settings = harness.settings(
            server.url("/feed"), allow_private_networks=False, allow_hosts=["127.0.0.1"]
        )

        (outcome,) = harness.run(settings).outcomes

        assert outcome.error is not None
        assert "127.0.0.2, a loopback address" in outcome.error
        assert private.seen == []
    assert len(server.requests_to("/feed")) == 1


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/feed", "http://[::1]:9/"]
)
def test_private_addresses_are_refused_before_connecting(harness: Harness, url: str) -> None:
    settings = harness.settings(url, allow_private_networks=False, timeout="2s")
    (outcome,) = harness.run(settings).outcomes
    assert outcome.error is not None
    assert "fetching it is refused" in outcome.error


def test_the_default_settings_refuse_loopback(server: FeedServer, harness: Harness) -> None:
    server.routes["/feed"] = Reply(200, FEED)
    (outcome,) = harness.run(
        harness.settings(server.url("/feed"), allow_private_networks=False)
    ).outcomes
    assert outcome.error is not None
    assert "loopback" in outcome.error
    assert server.seen == []


def test_no_more_than_per_host_requests_are_in_flight_to_one_host(harness: Harness) -> None:
    hosts = [FeedServer(f"127.0.0.{n}") for n in (1, 2, 3)]
    for host in hosts:
        host.__enter__()
        for index in range(20):
            host.routes[f"/f{index}"] = Reply(
                200, rss(f"H{host.host}", (str(index), host.host)), delay=0.05
            )
    try:
        urls = [host.url(f"/f{index}") for host in hosts for index in range(20)]
        summary = harness.run(harness.settings(*urls, per_host=2, concurrency=32))
    finally:
        for host in hosts:
            host.__exit__(None, None, None)

    assert len(summary.outcomes) == 60
    assert not summary.failed
    assert [host.max_in_flight for host in hosts] == [2, 2, 2]


def test_a_host_rule_opens_up_one_host_and_leaves_the_others_polite(harness: Harness) -> None:
    """The RSSHub case: every route on one host of the operator's, which may take 5 at once."""
    hosts = [FeedServer(f"127.0.0.{n}") for n in (1, 2, 3)]
    for host in hosts:
        host.__enter__()
        for index in range(20):
            host.routes[f"/f{index}"] = Reply(
                200, rss(f"H{host.host}", (str(index), host.host)), delay=0.05
            )
    rules = [{"match": "127.0.0.2", "per_host": 5}, {"match": "*.example.org", "per_host": 9}]
    try:
        urls = [host.url(f"/f{index}") for host in hosts for index in range(20)]
        summary = harness.run(harness.settings(*urls, per_host=2, concurrency=32, hosts=rules))
    finally:
        for host in hosts:
            host.__exit__(None, None, None)

    assert not summary.failed
    assert [host.max_in_flight for host in hosts] == [2, 5, 2]


def test_a_host_rule_gives_its_hosts_their_own_timeout(harness: Harness) -> None:
    slow, other = FeedServer("127.0.0.1"), FeedServer("127.0.0.2")
    with slow, other:
        slow.routes["/feed"] = Reply(200, FEED, delay=1.0)
        other.routes["/feed"] = Reply(200, FEED, delay=1.0)
        rules = [{"match": "127.0.0.1", "timeout": "0.3s"}]
        summary = harness.run(
            harness.settings(slow.url("/feed"), other.url("/feed"), timeout="5s", hosts=rules)
        )

    outcomes = {outcome.source: outcome for outcome in summary.outcomes}
    timed_out = outcomes[slow.url("/feed")]
    assert timed_out.error is not None
    assert "within 0.3s" in timed_out.error
    assert "[[fetch.hosts]]" in timed_out.error
    assert outcomes[other.url("/feed")].error is None


@pytest.mark.parametrize(
    ("body", "charset"),
    [
        (
            rss("新媒体 学术界", ("1", "离职潮")).replace(b"utf-8", b"gbk").decode().encode("gbk"),
            "gbk",
        ),
        (rss("Ünïcödé ✓", ("1", "ok")), "windows-1252"),
    ],
    ids=["gbk", "utf8-labelled-windows-1252"],
)
def test_encodings_over_http_come_out_readable(
    server: FeedServer, harness: Harness, body: bytes, charset: str
) -> None:
    server.routes["/feed"] = Reply(200, body, {"Content-Type": f"text/xml; charset={charset}"})
    harness.run(harness.settings(server.url("/feed")))
    with harness.store.database.read() as conn:
        (title,) = conn.exec_driver_sql("SELECT title FROM posts").one()
    assert title in ("新媒体 学术界 1", "Ünïcödé ✓ 1")


def test_requests_name_the_project_and_accept_compression(
    server: FeedServer, harness: Harness
) -> None:
    server.routes["/feed"] = Reply(200, FEED)
    harness.run(harness.settings(server.url("/feed")))
    (seen,) = server.requests_to("/feed")
    assert seen.headers["user-agent"].startswith(f"feed-ingest/{__version__} ")
    assert {"gzip", "br"} <= {e.strip() for e in seen.headers["accept-encoding"].split(",")}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_run_over_good_and_broken_sources_exits_1_and_explains_each_failure(
    server: FeedServer, tmp_path: Path, cli_for: Any
) -> None:
    server.routes["/good"] = Reply(200, FEED)
    server.routes["/html"] = Reply(200, b"<html><body>a blog</body></html>")
    refused = f"http://127.0.0.1:{_closed_port()}/feed"
    sources = [
        server.url("/good"),
        server.url("/missing"),
        server.url("/html"),
        refused,
        str(tmp_path / "absent.xml"),
        str(CNBETA),
    ]
    config = write_config(
        tmp_path, [{"url": u} for u in sources], fetch={"allow_private_networks": True}
    )
    cli = cli_for(config)

    result = cli("run")

    assert result.exit_code == 1
    assert "sources: 2 ok, 4 failed" in result.stdout
    assert f"failed: {server.url('/missing')}: HTTP 404 Not Found: check the URL" in result.stdout
    assert f"failed: {server.url('/html')}: got an HTML page, not a feed" in result.stdout
    assert f"failed: {refused}: connection refused" in result.stdout
    assert f"failed: {tmp_path / 'absent.xml'}: no such file or folder" in result.stdout
    assert len(cli("entries", "list", "--json").json()) == 3

    report = cli("stats", "--json").json()
    by_url = {s["url"]: s for s in report["sources"]}
    assert by_url[server.url("/good")]["status"] == "ok"
    assert by_url[server.url("/good")]["posts"] == 2
    assert by_url[refused]["error_count"] == 1
    assert by_url[refused]["last_error"].startswith("connection refused")
    assert by_url[refused]["next_check_at"].endswith("Z")
    assert report["totals"] == {
        "sources": 6,
        "failing": 4,
        "disabled": 0,
        "posts": 3,
        "sightings": 3,
        "filtered": 0,
    }
    text = cli("stats").stdout
    assert "last error (http_status): HTTP 404 Not Found" in text
    assert "6 sources (4 failing, 0 disabled), 3 posts, 3 sightings" in text


def _fetch_from(handler: Callable[[httpx.Request], httpx.Response]) -> FetchResult:
    """What the fetcher returns for the answers ``handler`` gives, through httpx's MockTransport."""
    settings = load_settings(None, env={}).fetch

    async def fetch() -> FetchResult:
        async with Fetcher(settings, transport=httpx.MockTransport(handler)) as fetcher:
            return await fetcher.fetch("https://x.example/feed")

    return asyncio.run(fetch())


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(410), Gone("HTTP 410 Gone: the server says this feed is gone for good")),
        (httpx.Response(429, headers={"Retry-After": "120"}), RetryLater),
        (httpx.Response(503), RetryLater),
        (httpx.Response(404), Failed),
    ],
    ids=["410", "429", "503", "404"],
)
def test_expected_outcomes_are_returned_as_values_not_raised(
    answer: httpx.Response, expected: object
) -> None:
    result = _fetch_from(lambda request: answer)
    if isinstance(expected, type):
        assert isinstance(result, expected)
    else:
        assert result == expected


def test_a_network_failure_is_returned_as_a_failure_with_its_kind() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    result = _fetch_from(refuse)

    assert isinstance(result, Failed)
    assert result.kind is ErrorKind.NETWORK
