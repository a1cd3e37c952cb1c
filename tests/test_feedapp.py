"""``/feeds/...`` of a real ``ingest serve`` process: merged feeds over HTTP, with validators."""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import jsonschema
import pytest

from ingest.config import load_settings
from ingest.observe.metrics import HttpEndpoint
from ingest.publish import feedapp
from ingest.publish.feedapp import feeds_app, not_modified, route
from ingest.publish.formats import FeedFormat
from ingest.publish.merged import Selection
from scheduler.daemon import Daemon
from storage import open_store
from tests.conftest import DATA, write_config
from tests.feedserver import FeedServer, Reply, rss
from tests.test_daemon import Serve, free_port, wait_for

SCHEMA = json.loads((DATA / "jsonfeed-1.1.schema.json").read_text("utf-8"))


def fetch(url: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def daemon(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[str, str]]:
    """A running ``ingest serve`` that stored two posts of one source (categories 新媒体 and
    Tech); the base URL of its HTTP endpoint, and the source's feed URL."""
    with FeedServer() as server:
        server.routes["/feed"] = lambda _seen: Reply(200, rss("Post", ("1", "one"), ("2", "two")))
        port = free_port()
        config = write_config(
            tmp_path,
            [{"url": server.url("/feed"), "categories": ["新媒体", "Tech"]}],
            fetch={"allow_private_networks": True},
            serve={"port": port, "tick": "200ms"},
        )
        serve = Serve(tmp_path, sqlite_url, config)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(
                lambda: _entries(base) == 2, what="the daemon to store the posts and serve them"
            )
            yield base, server.url("/feed")
        finally:
            serve.signal(signal.SIGTERM)
            assert serve.wait(15) == 0


def _entries(base: str) -> int:
    try:
        status, _, body = fetch(f"{base}/feeds/all.atom")
    except OSError:
        return -1
    return len(feedparser.parse(body).entries) if status == 200 else -1


def test_the_merged_feed_is_served_with_validators_and_304s(daemon: tuple[str, str]) -> None:
    base, source_url = daemon
    url = f"{base}/feeds/all.atom"

    status, headers, body = fetch(url)

    assert status == 200
    assert headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    feed = feedparser.parse(body)
    assert feed.bozo == 0
    assert [link.href for link in feed.feed.links if link.rel == "self"] == [url]
    assert {entry.title for entry in feed.entries} == {"Post 1", "Post 2"}
    assert [link.href for link in feed.entries[0].source.links] == [source_url]
    etag, last_modified = headers["ETag"], headers["Last-Modified"]

    assert fetch(url, **{"If-None-Match": etag})[0::2] == (304, b"")
    assert fetch(url, **{"If-None-Match": f'"other", W/{etag}'})[0] == 304
    assert fetch(url, **{"If-None-Match": '"other"'})[0] == 200
    assert fetch(url, **{"If-Modified-Since": last_modified})[0] == 304
    assert fetch(url, **{"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})[0] == 200
    again = fetch(url)
    assert (again[1]["ETag"], again[2]) == (etag, body)
    assert fetch(url, method="HEAD")[0::2] == (200, b"")


def test_category_and_source_feeds_and_unknown_ones(daemon: tuple[str, str]) -> None:
    base, _ = daemon

    status, headers, body = fetch(f"{base}/feeds/category/tech.json")
    assert status == 200
    assert headers["Content-Type"] == "application/feed+json; charset=utf-8"
    document = json.loads(body)
    jsonschema.validate(document, SCHEMA)
    assert len(document["items"]) == 2
    assert document["feed_url"] == f"{base}/feeds/category/tech.json"

    chinese = feedparser.parse(fetch(f"{base}/feeds/category/%E6%96%B0%E5%AA%92%E4%BD%93.atom")[2])
    assert chinese.bozo == 0
    assert chinese.feed.title == "新媒体"
    assert len(chinese.entries) == 2

    by_source = json.loads(fetch(f"{base}/feeds/source/1.json")[2])
    assert by_source["title"] == "Served"
    assert len(by_source["items"]) == 2

    assert fetch(f"{base}/feeds/source/99.atom")[0::2] == (404, b"no source with id 99\n")
    assert fetch(f"{base}/feeds/category/nope.json")[0::2] == (
        404,
        b"no post has the category 'nope'\n",
    )
    assert fetch(f"{base}/feeds/all.rss")[0] == 404
    assert fetch(f"{base}/feeds/source/x.atom")[0] == 404
    assert fetch(f"{base}/feeds/all.atom", method="POST")[0] == 405
    assert fetch(f"{base}/healthz")[0] == 200


def test_serve_feeds_false_leaves_only_healthz_and_metrics(tmp_path: Path, sqlite_url: str) -> None:
    port = free_port()
    config = write_config(tmp_path, serve={"port": port, "tick": "200ms", "feeds": False})
    store = open_store(sqlite_url)
    daemon = Daemon(store, load_settings(config, env={}))
    answers: list[tuple[int, bytes]] = []

    async def scenario() -> None:
        task = asyncio.create_task(daemon.run())
        base = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(
            wait_for, lambda: _status(f"{base}/healthz") == 200, what="a healthy daemon"
        )
        answers.append(await asyncio.to_thread(lambda: fetch(f"{base}/feeds/all.atom")[0::2]))
        daemon.stop()
        await task

    try:
        asyncio.run(scenario())
    finally:
        store.close()
    assert answers == [(404, b"not found: try /healthz or /metrics\n")]


def test_a_feed_request_that_finds_every_reader_busy_gets_503_and_retry_after(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feedapp, "READERS", 0)  # every reader slot taken
    monkeypatch.setattr(feedapp, "BUSY_WAIT_S", 0.05)
    store = open_store(sqlite_url)
    endpoint = HttpEndpoint("127.0.0.1", 0, feeds_app(store))
    try:
        status, headers, body = fetch(f"http://127.0.0.1:{endpoint.port}/feeds/all.json")
    finally:
        endpoint.close()
        store.close()

    assert (status, headers["Retry-After"]) == (503, "5")
    assert body == b"busy: too many feed requests at once; try again soon\n"


def _status(url: str) -> int:
    try:
        return fetch(url)[0]
    except OSError:
        return -1


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/feeds/all.atom", (Selection(), FeedFormat.ATOM)),
        ("/feeds/all.json", (Selection(), FeedFormat.JSON_FEED)),
        ("/feeds/category/a/b.json", (Selection(category="a/b"), FeedFormat.JSON_FEED)),
        ("/feeds/category/v1.2.atom", (Selection(category="v1.2"), FeedFormat.ATOM)),
        ("/feeds/source/12.atom", (Selection(source_id=12), FeedFormat.ATOM)),
        ("/feeds/source/-1.atom", None),
        ("/feeds/category/.atom", None),
        ("/feeds/all", None),
        ("/feeds/all.xml", None),
        ("/feeds/tag/x.atom", None),
    ],
)
def test_routes(path: str, expected: tuple[Selection, FeedFormat] | None) -> None:
    assert route(path) == expected


UPDATED = datetime(2024, 6, 1, 12, 0, 0, 500_000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, False),
        ({"HTTP_IF_NONE_MATCH": '"abc"'}, True),
        ({"HTTP_IF_NONE_MATCH": "*"}, True),
        (
            {
                "HTTP_IF_NONE_MATCH": '"x"',
                "HTTP_IF_MODIFIED_SINCE": "Sat, 01 Jun 2024 13:00:00 GMT",
            },
            False,
        ),
        ({"HTTP_IF_MODIFIED_SINCE": "Sat, 01 Jun 2024 12:00:00 GMT"}, True),
        ({"HTTP_IF_MODIFIED_SINCE": "Sat, 01 Jun 2024 11:59:59 GMT"}, False),
        ({"HTTP_IF_MODIFIED_SINCE": "yesterday"}, False),
    ],
    ids=["none", "etag", "star", "etag-wins", "same-second", "earlier", "unreadable"],
)
def test_conditional_requests(headers: dict[str, str], expected: bool) -> None:
    assert not_modified(headers, '"abc"', UPDATED) is expected
