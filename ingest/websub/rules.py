"""WebSub's decisions, as pure functions of a subscription, what arrived and ``now``.

- **Discovery** (WebSub §4): a hub and the topic's URL from the response's ``Link`` header
  first, else from the document (``<link rel="hub">``/``atom:link``, JSON Feed ``hubs``); the
  topic falls back to the feed's URL when neither names it (``advertised``).
- **When to ask** (``next_request``): subscribe when a source advertises a hub; renew once
  ``RENEW_AT`` of the lease the hub granted has passed; after a denial, again ``DENIED_RETRY``
  later; unsubscribe when the source is disabled or removed while the lease runs. A request
  not answered (verified, denied) within ``RETRY_WAIT``, or refused, is sent again then.
- **Verification of intent** (§5.3): the challenge is echoed only for the mode and topic we
  asked for and still await (``asked_for``); the hub's ``hub.lease_seconds`` is the lease.
- **Authenticated content** (§7, §8): ``X-Hub-Signature: method=hex`` is the HMAC of the raw
  body with the subscription's secret, for sha1, sha256, sha384 or sha512, compared in constant
  time. Unsigned or wrongly signed content is acknowledged (2xx, as §8 requires) and dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ingest.types import (
    Digest,
    Fetched,
    HubLink,
    HubMode,
    PushEvent,
    Subscription,
    SubscriptionState,
)

RENEW_AT = 0.8
"""Share of a granted lease after which it is renewed: a day or two of margin on ten days."""
RETRY_WAIT = timedelta(hours=1)
"""How long a request may go unanswered (or how long after a refusal) before it is sent again."""
DENIED_RETRY = timedelta(days=1)
"""How long after a hub's denial we ask it again: a hub may deny for a passing reason."""
ALGORITHMS: dict[str, Callable[..., Any]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
"""The signature methods WebSub §7 names, by the name ``X-Hub-Signature`` gives them."""
SECRET_BYTES = 32
"""Random bytes of a secret (64 hex characters; the spec caps ``hub.secret`` at 200 bytes)."""


def advertised(result: Fetched | None, digest: Digest | None, feed_url: str) -> HubLink | None:
    """The hub and topic a check found, if it found a hub (see the module docstring)."""
    hub = (result.hub if result else None) or (digest.hub if digest else None)
    if not hub:
        return None
    topic = (
        (result.self_url if result else None) or (digest.self_url if digest else None) or feed_url
    )
    return HubLink(hub=hub, topic=topic)


def callback_for(callback_url: str, key: str) -> str:
    """The callback URL of the subscription named ``key``: ``[websub] callback_url/<key>``."""
    return f"{callback_url.rstrip('/')}/{key}"


def new_key() -> str:
    """A callback key: unguessable, so the URL itself does not invite forged requests."""
    return secrets.token_urlsafe(16)


def new_secret() -> str:
    return secrets.token_hex(SECRET_BYTES)


def renew_at(sub: Subscription) -> datetime | None:
    """When an active subscription is renewed: ``RENEW_AT`` into the lease the hub granted,
    counted from its verification. None when there is no lease to renew."""
    if sub.state is not SubscriptionState.ACTIVE or sub.lease_until is None:
        return None
    start = sub.answered_at or sub.lease_until
    return start + (sub.lease_until - start) * RENEW_AT


def next_request(sub: Subscription, now: datetime) -> HubMode | None:
    """What to ask ``sub``'s hub at ``now``, if anything (see the module docstring)."""
    unanswered = sub.requested_at is not None and (
        sub.answered_at is None or sub.answered_at < sub.requested_at
    )
    if unanswered and sub.requested_at is not None and now < sub.requested_at + RETRY_WAIT:
        return None
    live = sub.state is SubscriptionState.ACTIVE and (
        sub.lease_until is not None and sub.lease_until > now
    )
    if not sub.source_enabled:
        return HubMode.UNSUBSCRIBE if live else None
    match sub.state:
        case SubscriptionState.ACTIVE:
            renew = renew_at(sub)
            return HubMode.SUBSCRIBE if renew is None or now >= renew else None
        case SubscriptionState.DENIED:
            denied = sub.answered_at or sub.created_at
            return HubMode.SUBSCRIBE if now >= denied + DENIED_RETRY else None
        case _:
            return HubMode.SUBSCRIBE


def forgettable(sub: Subscription, now: datetime) -> bool:
    """Whether ``sub`` can be deleted: its source is removed and the hub no longer pushes to
    us (never verified, unsubscribed, denied, or its lease ended)."""
    live = sub.state is SubscriptionState.ACTIVE and (
        sub.lease_until is not None and sub.lease_until > now
    )
    return sub.source_id is None and not live


def asked_for(sub: Subscription, mode: str, topic: str) -> bool:
    """Whether a verification of ``mode`` for ``topic`` is one ``sub`` awaits (WebSub §5.3: a
    subscriber answers only for what it asked)."""
    return sub.requested is not None and mode == sub.requested.value and topic == sub.topic


def granted_lease(lease_seconds: str | None, now: datetime) -> datetime | None:
    """When the lease the hub granted (``hub.lease_seconds``) ends; None when it gave none
    (then the subscription is renewed at the next look, rather than trusted forever)."""
    text = (lease_seconds or "").strip()
    if not text.isdigit() or int(text) <= 0:
        return None
    return now + timedelta(seconds=min(int(text), 10 * 365 * 86400))


def signature_fault(secret: str, body: bytes, header: str | None) -> PushEvent | None:
    """Why pushed ``body`` is not to be trusted, or None when ``header`` (``X-Hub-Signature``)
    is its HMAC with ``secret`` by one of ``ALGORITHMS``."""
    method, _, signature = (header or "").strip().partition("=")
    algorithm = ALGORITHMS.get(method.strip().lower())
    if algorithm is None or not signature.strip():
        return PushEvent.UNSIGNED
    expected = hmac.new(secret.encode(), body, algorithm).hexdigest()
    if hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        return None
    return PushEvent.BAD_SIGNATURE
