"""WebSub discovery (§4): the hub and the topic from the Link header or the document, found by
the same check that stores the posts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from ingest.config import load_settings
from ingest.digest.parse import parse_feed
from ingest.fetch.client import Fetcher
from ingest.types import Fetched, HubLink
from scheduler.driver import run_once
from storage import open_store
from tests.conftest import write_config
from tests.feedserver import FeedServer, Reply, rss

ATOM = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>
<id>urn:a</id><link rel="hub" href="https://hub.example/"/><link rel="self" href="/atom.xml"/>
<entry><id>1</id><title>one</title></entry></feed>"""
RSS = b"""<?xml version="1.0"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">
<channel><title>R</title><link>https://blog.example/</link>
<atom:link rel="hub" href="https://hub.example/"/>
<atom:link rel="self" href="https://blog.example/rss.xml" type="application/rss+xml"/>
<item><guid>1</guid><title>one</title></item></channel></rss>"""
JSON_FEED = json.dumps(
    {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "J",
        "feed_url": "https://blog.example/feed.json",
        "hubs": [
            {"type": "rssCloud", "url": "https://cloud.example/"},
            {"type": "WebSub", "url": "https://hub.example/"},
        ],
        "items": [{"id": "1", "content_text": "one"}],
    }
).encode()


@pytest.mark.parametrize(
    ("document", "self_url"),
    [
        pytest.param(ATOM, "https://blog.example/atom.xml", id="atom, relative self"),
        pytest.param(RSS, "https://blog.example/rss.xml", id="rss atom:link"),
        pytest.param(JSON_FEED, "https://blog.example/feed.json", id="json feed hubs"),
    ],
)
def test_the_document_names_its_hub_and_itself(document: bytes, self_url: str) -> None:
    feed = parse_feed(document, source="s", url="https://blog.example/feed")
    assert (feed.hub, feed.self_url) == ("https://hub.example/", self_url)


def test_a_feed_without_a_hub_names_none() -> None:
    feed = parse_feed(rss("Plain", ("1", "one")), source="s", url="https://blog.example/feed")
    assert (feed.hub, feed.self_url) == (None, None)


def test_the_link_header_is_read_and_made_absolute(tmp_path: Path) -> None:
    with FeedServer() as server:
        server.routes["/feed"] = Reply(
            200,
            rss("Linked", ("1", "one")),
            {"Link": '</hub>; rel="hub", <https://blog.example/feed>; rel="self"'},
        )
        config = write_config(tmp_path, fetch={"allow_private_networks": True})
        settings = load_settings(config, env={})

        async def fetch() -> object:
            async with Fetcher(settings.fetch) as fetcher:
                return await fetcher.fetch(server.url("/feed"))

        result = asyncio.run(fetch())
    assert isinstance(result, Fetched)
    assert (result.hub, result.self_url) == (server.url("/hub"), "https://blog.example/feed")


def test_a_run_reports_the_hub_a_source_advertises(tmp_path: Path, sqlite_url: str) -> None:
    with FeedServer() as server:
        server.routes["/feed"] = Reply(200, RSS, {"Link": '<https://push.example/>; rel="hub"'})
        config = write_config(
            tmp_path, [{"url": server.url("/feed")}], fetch={"allow_private_networks": True}
        )
        store = open_store(sqlite_url)
        try:
            summary = asyncio.run(run_once(store, load_settings(config, env={})))
        finally:
            store.close()
    (outcome,) = summary.outcomes
    assert outcome.hub == HubLink("https://push.example/", "https://blog.example/rss.xml")
