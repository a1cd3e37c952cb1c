"""WebSub end to end: ``ingest serve`` (a real process) subscribes to a hub on loopback, answers
its verification, and stores what the hub pushes when it is signed with the subscription's
secret, and only then; while the hub pushes, the feed is polled at ``[schedule] max_interval``."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.conftest import write_config
from tests.feedserver import FeedServer, Reply, rss
from tests.test_daemon import Serve, free_port, get, metric, wait_for
from tests.websubhub import LEASE_S, Hub, call


def hub_feed(hub: str, topic: str, *items: tuple[str, str]) -> bytes:
    """An RSS document advertising ``hub`` and naming itself ``topic`` (WebSub §4)."""
    links = (
        f'<atom:link rel="hub" href="{hub}"/>'
        f'<atom:link rel="self" href="{topic}" type="application/rss+xml"/>'
    )
    return (
        rss("Pushed", *items)
        .replace(
            b'<rss version="2.0">', b'<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">'
        )
        .replace(b"<channel>", b"<channel>" + links.encode())
    )


@dataclass
class Pushed:
    """A running ``ingest serve`` subscribed to ``hub`` for the feed ``topic``."""

    serve: Serve
    hub: Hub
    feed: FeedServer
    topic: str
    port: int
    db: Path

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(sql, args).fetchall()

    def titles(self) -> set[str]:
        return {title for (title,) in self.rows("SELECT title FROM posts")}

    @property
    def callback(self) -> str:
        return str(self.hub.subscribers[self.topic]["hub.callback"])

    def metrics(self) -> str:
        return get(f"http://127.0.0.1:{self.port}/metrics")[1]


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pushed]:
    folder = tmp_path_factory.mktemp("websub")
    with FeedServer() as feed, Hub() as hub:
        topic = feed.url("/feed")
        feed.routes["/feed"] = Reply(200, hub_feed(hub.url("/"), topic, ("1", "polled")))
        port = free_port()
        config = write_config(
            folder,
            [{"url": topic}],
            defaults={"interval": "1s"},
            schedule={"min_interval": "1s", "max_interval": "1h"},
            fetch={"allow_private_networks": True, "timeout": "10s"},
            serve={"port": port, "tick": "200ms", "grace": "5s"},
            websub={"callback_url": f"http://127.0.0.1:{port}/websub", "lease": "10d"},
        )
        db = folder / "ingest.db"
        serve = Serve(folder, f"sqlite:///{db}", config, env={"INGEST_LOG_FORMAT": "json"})
        try:
            wait_for(lambda: topic in hub.subscribers, 30, "the hub to verify a subscription")
            yield Pushed(serve, hub, feed, topic, port, db)
        finally:
            serve.process.kill()
            serve.wait(10)


def test_a_feed_advertising_a_hub_is_subscribed_to_and_the_intent_verified(
    pushed: Pushed,
) -> None:
    (request,) = [r for r in pushed.hub.requests if r["hub.mode"] == "subscribe"][:1]
    assert request["hub.topic"] == pushed.topic
    assert request["hub.callback"].startswith(f"http://127.0.0.1:{pushed.port}/websub/")
    assert request["hub.lease_seconds"] == str(10 * 86400)
    assert len(request["hub.secret"]) == 64
    assert pushed.hub.verifications[0].echoed
    ((state, hub, secret, lease_until),) = pushed.rows(
        "SELECT state, hub, secret, lease_until FROM websub_subscriptions"
    )
    assert (state, hub, secret) == ("active", pushed.hub.url("/"), request["hub.secret"])
    granted = datetime.fromisoformat(lease_until).replace(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(seconds=LEASE_S - 120) < granted <= timedelta(seconds=LEASE_S)


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha384", "sha512"])
def test_signed_content_is_stored_for_each_signature_method(pushed: Pushed, algorithm: str) -> None:
    document = hub_feed(pushed.hub.url("/"), pushed.topic, (algorithm, f"pushed with {algorithm}"))
    assert pushed.hub.publish(pushed.topic, document, algorithm=algorithm) == 202
    wait_for(lambda: f"Pushed {algorithm}" in pushed.titles(), 15, "the pushed post")


@pytest.mark.parametrize(
    ("signature", "event"),
    [
        pytest.param(None, "unsigned", id="unsigned"),
        pytest.param("sha256=" + "0" * 64, "bad_signature", id="wrong signature"),
        pytest.param("md5=0123", "unsigned", id="unknown method"),
    ],
)
def test_unsigned_or_wrongly_signed_content_is_acknowledged_and_dropped(
    pushed: Pushed, signature: str | None, event: str
) -> None:
    name = f'ingest_websub_callbacks_total{{event="{event}"}}'
    before = metric(pushed.metrics(), name)
    document = hub_feed(pushed.hub.url("/"), pushed.topic, (f"forged-{event}", "forged"))
    assert pushed.hub.send(pushed.topic, document, signature) == 202
    assert metric(pushed.metrics(), name) == before + 1
    time.sleep(1)  # what would have been stored by now, had it been taken
    assert f"Pushed forged-{event}" not in pushed.titles()


def test_a_challenge_for_what_we_never_asked_is_refused(pushed: Pushed) -> None:
    def verify(callback: str, mode: str, topic: str) -> int:
        query = {
            "hub.mode": mode,
            "hub.topic": topic,
            "hub.challenge": "c",
            "hub.lease_seconds": "9",
        }
        return call(f"{callback}?{urlencode(query)}")

    assert verify(pushed.callback, "subscribe", "https://evil.example/feed") == 404
    assert verify(pushed.callback, "unsubscribe", pushed.topic) == 404
    assert verify(pushed.callback, "subscribe", pushed.topic) == 404  # verified already
    unknown = pushed.callback.rsplit("/", 1)[0] + "/no-such-key"
    assert verify(unknown, "subscribe", pushed.topic) == 404
    assert call(unknown, data=b"<rss/>") == 410  # the hub is told to drop it
    assert pushed.rows("SELECT state FROM websub_subscriptions") == [("active",)]


def test_while_the_hub_pushes_the_feed_is_polled_at_max_interval(pushed: Pushed) -> None:
    def far_off() -> bool:
        ((next_check,),) = pushed.rows("SELECT next_check_at FROM sources")
        due = datetime.fromisoformat(next_check).replace(tzinfo=UTC)
        return due > datetime.now(UTC) + timedelta(minutes=50)

    wait_for(far_off, 15, "the next poll an hour away")
    polls = len(pushed.feed.requests_to("/feed"))
    time.sleep(2)  # two of the configured 1s intervals
    assert len(pushed.feed.requests_to("/feed")) == polls


def test_a_denial_is_recorded_and_polling_resumes_at_once(pushed: Pushed) -> None:
    """Last in this module: it ends the subscription the tests above share."""
    query = {"hub.mode": "denied", "hub.topic": pushed.topic, "hub.reason": "quota exceeded"}
    assert call(f"{pushed.callback}?{urlencode(query)}") == 200
    assert pushed.rows("SELECT state, last_error FROM websub_subscriptions") == [
        ("denied", "denied by the hub: quota exceeded")
    ]
    polls = len(pushed.feed.requests_to("/feed"))
    wait_for(lambda: len(pushed.feed.requests_to("/feed")) > polls + 1, 15, "polling again")
