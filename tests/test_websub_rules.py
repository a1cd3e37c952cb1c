"""WebSub's decisions as tables over a fixed ``now``: discovery, when to ask a hub, which
verifications to answer, which signatures to trust. No clock, no server."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ingest.types import (
    Digest,
    Fetched,
    HubLink,
    HubMode,
    PushEvent,
    Subscription,
    SubscriptionState,
)
from ingest.websub.rules import (
    advertised,
    asked_for,
    callback_for,
    forgettable,
    granted_lease,
    next_request,
    renew_at,
    signature_fault,
)

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
FEED = "https://blog.example/feed.xml"
SUB = Subscription(
    id=1,
    source_id=7,
    hub="https://hub.example/",
    topic=FEED,
    key="k",
    secret="s3cret",
    state=SubscriptionState.PENDING,
    requested=None,
    requested_at=None,
    lease_s=864000,
    lease_until=None,
    answered_at=None,
    last_error=None,
    created_at=NOW - 30 * DAY,
    source_enabled=True,
)
ACTIVE = replace(
    SUB,
    state=SubscriptionState.ACTIVE,
    requested_at=NOW - 5 * DAY,
    answered_at=NOW - 5 * DAY,
    lease_until=NOW + 5 * DAY,
)


@pytest.mark.parametrize(
    ("result", "digest", "expected"),
    [
        pytest.param(None, None, None, id="no hub anywhere"),
        pytest.param(
            None,
            Digest(None, (), hub="https://hub.example/"),
            HubLink("https://hub.example/", FEED),
            id="hub in the document, no self: the feed's URL is the topic",
        ),
        pytest.param(
            Fetched(url=FEED, document=b"", hub="https://a.example/", self_url="https://t/a"),
            Digest(None, (), hub="https://b.example/", self_url="https://t/b"),
            HubLink("https://a.example/", "https://t/a"),
            id="the Link header comes first",
        ),
        pytest.param(
            Fetched(url=FEED, document=b"", hub="https://a.example/"),
            Digest(None, (), self_url="https://t/b"),
            HubLink("https://a.example/", "https://t/b"),
            id="hub from the header, self from the document",
        ),
    ],
)
def test_discovery(result: Fetched | None, digest: Digest | None, expected: HubLink | None) -> None:
    assert advertised(result, digest, FEED) == expected


@pytest.mark.parametrize(
    ("sub", "expected"),
    [
        pytest.param(SUB, HubMode.SUBSCRIBE, id="new: subscribe"),
        pytest.param(
            replace(SUB, requested=HubMode.SUBSCRIBE, requested_at=NOW - timedelta(minutes=5)),
            None,
            id="asked, verification awaited",
        ),
        pytest.param(
            replace(SUB, requested=HubMode.SUBSCRIBE, requested_at=NOW - timedelta(hours=2)),
            HubMode.SUBSCRIBE,
            id="asked, never verified: ask again",
        ),
        pytest.param(
            replace(SUB, requested_at=NOW - timedelta(minutes=5), last_error="HTTP 500"),
            None,
            id="refused a moment ago: wait",
        ),
        pytest.param(ACTIVE, None, id="active, half the lease left"),
        pytest.param(
            replace(ACTIVE, lease_until=NOW + 1.5 * DAY),
            None,
            id="active, before 80 % of the lease",
        ),
        pytest.param(
            replace(ACTIVE, lease_until=NOW + 1.2 * DAY),
            HubMode.SUBSCRIBE,
            id="active, 80 % of the lease: renew",
        ),
        pytest.param(
            replace(ACTIVE, lease_until=None), HubMode.SUBSCRIBE, id="active, no lease given"
        ),
        pytest.param(
            replace(SUB, state=SubscriptionState.DENIED, answered_at=NOW - timedelta(hours=3)),
            None,
            id="denied lately: not yet",
        ),
        pytest.param(
            replace(SUB, state=SubscriptionState.DENIED, answered_at=NOW - 2 * DAY),
            HubMode.SUBSCRIBE,
            id="denied a day ago: ask again",
        ),
        pytest.param(
            replace(ACTIVE, source_enabled=False),
            HubMode.UNSUBSCRIBE,
            id="source disabled while pushed: unsubscribe",
        ),
        pytest.param(
            replace(ACTIVE, source_enabled=False, lease_until=NOW - DAY),
            None,
            id="source disabled, lease over: nothing to undo",
        ),
        pytest.param(replace(SUB, source_enabled=False), None, id="source disabled, never active"),
        pytest.param(
            replace(SUB, state=SubscriptionState.UNSUBSCRIBED),
            HubMode.SUBSCRIBE,
            id="unsubscribed, source enabled again",
        ),
    ],
)
def test_when_to_ask_the_hub(sub: Subscription, expected: HubMode | None) -> None:
    assert next_request(sub, NOW) == expected


def test_renewal_is_due_at_80_percent_of_the_granted_lease() -> None:
    granted = replace(ACTIVE, answered_at=NOW, lease_until=NOW + 10 * DAY)
    assert renew_at(granted) == NOW + 8 * DAY
    assert next_request(granted, NOW + 8 * DAY - timedelta(seconds=1)) is None
    assert next_request(granted, NOW + 8 * DAY) is HubMode.SUBSCRIBE
    assert renew_at(SUB) is None


def test_removed_sources_are_forgotten_once_no_hub_pushes() -> None:
    assert not forgettable(SUB, NOW)
    assert not forgettable(replace(ACTIVE, source_id=None), NOW)
    assert forgettable(replace(ACTIVE, source_id=None, lease_until=NOW - DAY), NOW)
    assert forgettable(replace(SUB, source_id=None, state=SubscriptionState.UNSUBSCRIBED), NOW)


@pytest.mark.parametrize(
    ("requested", "mode", "topic", "answered"),
    [
        (HubMode.SUBSCRIBE, "subscribe", FEED, True),
        (HubMode.UNSUBSCRIBE, "unsubscribe", FEED, True),
        (None, "subscribe", FEED, False),  # never asked, or already verified
        (HubMode.SUBSCRIBE, "unsubscribe", FEED, False),  # someone unsubscribing us
        (HubMode.SUBSCRIBE, "subscribe", "https://other.example/feed", False),
    ],
)
def test_only_verifications_we_asked_for_are_answered(
    requested: HubMode | None, mode: str, topic: str, answered: bool
) -> None:
    assert asked_for(replace(SUB, requested=requested), mode, topic) is answered


@pytest.mark.parametrize(
    ("text", "expected"),
    [("864000", NOW + 10 * DAY), ("", None), (None, None), ("-5", None), ("soon", None)],
)
def test_granted_lease(text: str | None, expected: datetime | None) -> None:
    assert granted_lease(text, NOW) == expected


def test_callbacks_end_in_the_subscriptions_key() -> None:
    assert callback_for("https://public.example/websub", "abc") == (
        "https://public.example/websub/abc"
    )
    assert callback_for("https://public.example/websub/", "abc").endswith("/websub/abc")


BODY = b"<feed>pushed</feed>"


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha384", "sha512"])
def test_each_signature_method_is_verified(algorithm: str) -> None:
    digest = hmac.new(b"s3cret", BODY, getattr(hashlib, algorithm)).hexdigest()
    assert signature_fault("s3cret", BODY, f"{algorithm}={digest}") is None
    assert signature_fault("s3cret", BODY, f"{algorithm}={digest.upper()}") is None
    assert signature_fault("other", BODY, f"{algorithm}={digest}") is PushEvent.BAD_SIGNATURE
    assert signature_fault("s3cret", BODY + b" ", f"{algorithm}={digest}") is (
        PushEvent.BAD_SIGNATURE
    )


@pytest.mark.parametrize("header", [None, "", "sha256=", "md5=abc", "sha256", "garbage"])
def test_content_without_a_usable_signature_is_unsigned(header: str | None) -> None:
    assert signature_fault("s3cret", BODY, header) is PushEvent.UNSIGNED


def test_a_non_ascii_signature_is_bad_not_a_crash() -> None:
    assert signature_fault("s3cret", BODY, "sha256=é" * 10) is PushEvent.BAD_SIGNATURE
