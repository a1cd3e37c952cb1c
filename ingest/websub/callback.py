"""The subscriber's callback (WebSub §5.3, §7, §8): a WSGI app mounted at ``/websub`` by
``ingest serve``, one URL per subscription, ``/websub/<key>``.

- ``GET``, verification of intent: the challenge is echoed (200) only for a mode and topic the
  subscription asked for and still awaits (``rules.asked_for``), and the granted lease is
  recorded; anything else is 404, so nobody can subscribe us to what we did not ask for.
  ``hub.mode=denied`` for the subscription's topic records the denial (polling takes over).
- ``POST``, content distribution: at most the source's ``max_body`` (413 past it), signed with
  the subscription's secret (``rules.signature_fault``); signed content is handed to the
  pipeline and answered 202 at once, before it is digested. Unsigned or wrongly signed content
  is answered 202 too, as §8 requires, but dropped, logged and counted. A callback no
  subscription has any more is answered 410 Gone, which tells the hub to stop (§8).

What the app needs of the daemon (the store, the pipeline, the metrics) comes through
``Subscriptions``; the app runs in the HTTP endpoint's threads, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import parse_qs

import structlog

from ingest.types import HubMode, PushEvent, Subscription
from ingest.urls import redacted
from ingest.websub.rules import asked_for, granted_lease, signature_fault

log = structlog.get_logger("ingest.websub.callback")

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class Subscriptions(Protocol):
    """What the callback needs of the daemon (``ingest.pipeline.push.Push``)."""

    def find(self, key: str) -> Subscription | None:
        """The subscription whose callback ends in ``key``."""

    def confirm(self, sub: Subscription, lease_until: datetime | None) -> bool:
        """Record the hub's verification of the request ``sub`` awaits; False if it changed."""

    def deny(self, sub: Subscription, reason: str) -> None:
        """Record the hub's denial."""

    def max_body(self, sub: Subscription) -> int:
        """The largest content accepted for ``sub``: its source's ``max_body``."""

    def deliver(self, sub: Subscription, body: bytes, content_type: str | None) -> bool:
        """Hand verified content to the pipeline, returning at once; False when it cannot take
        it now (too much in hand), so the hub retries."""

    def count(self, event: PushEvent) -> None:
        """Count what a callback did (metrics)."""


def callback_app(subs: Subscriptions, clock: Callable[[], datetime]) -> WsgiApp:
    """The callback app over ``subs`` (see the module docstring); ``clock`` tells UTC now."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        key = environ.get("PATH_INFO", "").strip("/")
        sub = subs.find(key) if key and "/" not in key else None
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "GET":
            status, body = _verify(subs, sub, environ, clock())
        elif method == "POST":
            status, body = _content(subs, sub, environ)
        else:
            status, body = "405 Method Not Allowed", b"GET or POST\n"
        start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
        return [body]

    return app


def _verify(
    subs: Subscriptions, sub: Subscription | None, environ: dict[str, Any], now: datetime
) -> tuple[str, bytes]:
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    mode, topic = query.get("hub.mode", ""), query.get("hub.topic", "")
    if sub is None:
        subs.count(PushEvent.UNKNOWN)
        return "404 Not Found", b"no such subscription\n"
    if mode == "denied" and topic == sub.topic:
        reason = query.get("hub.reason", "") or "no reason given"
        subs.deny(sub, f"denied by the hub: {reason}"[:500])
        subs.count(PushEvent.DENIED)
        log.warning("websub_denied", hub=redacted(sub.hub), topic=redacted(topic), reason=reason)
        return "200 OK", b"noted\n"
    challenge = query.get("hub.challenge", "")
    if challenge and asked_for(sub, mode, topic):
        lease = granted_lease(query.get("hub.lease_seconds"), now)
        if subs.confirm(sub, lease if mode == HubMode.SUBSCRIBE.value else None):
            subs.count(PushEvent.VERIFIED)
            log.info("websub_verified", mode=mode, topic=redacted(topic), lease_until=lease)
            return "200 OK", challenge.encode()
    subs.count(PushEvent.REFUSED)
    log.warning("websub_verification_refused", mode=mode, topic=redacted(topic))
    return "404 Not Found", b"not asked for\n"


def _content(
    subs: Subscriptions, sub: Subscription | None, environ: dict[str, Any]
) -> tuple[str, bytes]:
    if sub is None or sub.source_id is None:
        subs.count(PushEvent.UNKNOWN)
        return "410 Gone", b"no such subscription\n"
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return "411 Length Required", b"Content-Length required\n"
    if length < 0 or length > subs.max_body(sub):
        subs.count(PushEvent.TOO_LARGE)
        log.warning("websub_content_dropped", topic=redacted(sub.topic), why="too_large")
        return "413 Content Too Large", b"too large\n"
    body = environ["wsgi.input"].read(length)
    fault = signature_fault(sub.secret, body, environ.get("HTTP_X_HUB_SIGNATURE"))
    if fault:
        subs.count(fault)
        log.warning("websub_content_dropped", topic=redacted(sub.topic), why=fault.value)
        return "202 Accepted", b"dropped\n"
    if not subs.deliver(sub, body, environ.get("CONTENT_TYPE")):
        return "503 Service Unavailable", b"busy; try again later\n"
    subs.count(PushEvent.INGESTED)
    return "202 Accepted", b"accepted\n"
