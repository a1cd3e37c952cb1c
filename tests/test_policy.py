"""Scheduling decisions as tables over a fixed ``now``: no clock, no server."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ingest.errors import ErrorKind
from ingest.types import (
    Digest,
    Failed,
    Failure,
    Fetched,
    Gone,
    NotModified,
    RetryLater,
    SourceSpec,
    SourceState,
    SourceUpdate,
)
from scheduler.policy import (
    after_failure,
    after_success,
    backoff_delay,
    is_due,
    poll_interval,
    publishing_rate,
    push_live,
    with_push,
)
from tests.builders import SCHEDULE, a_state

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
URL = "https://x.example/feed"
STATE = a_state(1, URL, title="X", etag='"old"')


DIGEST = Digest(feed_title="New title", posts=())


class NoJitter(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


def minutes(value: float) -> timedelta:
    return timedelta(minutes=value)


@pytest.mark.parametrize(
    ("interval_s", "ttl_s", "expected_s"),
    [
        (1800, None, 1800),
        (60, None, 300),  # the floor
        (1800, 3600, 3600),  # the feed's ttl asks for longer
        (1800, 600, 1800),  # a shorter ttl never speeds us up
        (1800, 10 * 86400, 86400),  # the ceiling
    ],
)
def test_poll_interval(interval_s: float, ttl_s: int | None, expected_s: float) -> None:
    assert poll_interval(interval_s, SCHEDULE, ttl_s=ttl_s) == expected_s


@pytest.mark.parametrize(
    ("errors", "expected_s"),
    [(1, 1800), (2, 3600), (3, 7200), (5, 28800), (6, 57600), (7, 86400), (40, 86400)],
)
def test_backoff_doubles_from_the_interval_up_to_the_cap(errors: int, expected_s: float) -> None:
    assert backoff_delay(errors, 1800, SCHEDULE) == expected_s


def success(
    state: SourceState, result: Fetched | NotModified | None, *, digest: Digest | None = DIGEST
) -> SourceUpdate:
    return after_success(
        state,
        result,
        digest,
        interval_s=1800,
        schedule=SCHEDULE,
        now=NOW,
        rng=NoJitter(),
    )


def failure(state: SourceState, failed: Failure) -> SourceUpdate:
    return after_failure(state, failed, interval_s=1800, schedule=SCHEDULE, now=NOW, rng=NoJitter())


def test_success_schedules_one_interval_ahead_and_resets_errors() -> None:
    failing = replace(STATE, error_count=4)
    update = success(failing, Fetched(url=URL, document=b"x", etag='"new"'))
    assert update.next_check_at == NOW + minutes(30)
    assert update.error_count == 0
    assert update.last_error is None
    assert update.etag == '"new"'
    assert update.status == "ok"


def test_not_modified_keeps_the_stored_validators_and_title() -> None:
    update = success(STATE, NotModified(url=URL), digest=None)
    assert update.status == "not_modified"
    assert update.etag == '"old"'


def test_cache_max_age_stretches_the_interval() -> None:
    update = success(STATE, Fetched(url=URL, document=b"x", max_age_s=7200))
    assert update.next_check_at == NOW + minutes(120)


@pytest.mark.parametrize(
    ("previous_url", "previous_count", "seen", "expected"),
    [
        (None, 0, "https://y.example/feed", ("https://y.example/feed", 1, URL)),
        (
            "https://y.example/feed",
            1,
            "https://y.example/feed",
            (None, 0, "https://y.example/feed"),
        ),
        ("https://z.example/feed", 1, "https://y.example/feed", ("https://y.example/feed", 1, URL)),
        ("https://y.example/feed", 1, None, (None, 0, URL)),
    ],
    ids=["first sighting", "second in a row: move", "a different target", "redirect gone"],
)
def test_permanent_redirects_move_the_source_on_the_second_check(
    previous_url: str | None,
    previous_count: int,
    seen: str | None,
    expected: tuple[str | None, int, str],
) -> None:
    state = replace(STATE, redirect_url=previous_url, redirect_count=previous_count)
    update = success(state, Fetched(url=URL, document=b"x", permanent_redirect=seen))
    assert (update.redirect_url, update.redirect_count, update.url) == expected


@pytest.mark.parametrize(
    ("failed", "status", "wait", "enabled"),
    [
        (Failed(ErrorKind.HTTP_STATUS, "HTTP 500"), "error", minutes(30), True),
        (Failed(ErrorKind.NOT_A_FEED, "not a feed"), "error", minutes(30), True),
        (Gone("HTTP 410 Gone"), "gone", minutes(30), False),
        (RetryLater("HTTP 429", NOW + timedelta(hours=3)), "retry_later", timedelta(hours=3), True),
        (RetryLater("HTTP 503", NOW + timedelta(days=30)), "retry_later", timedelta(days=7), True),
        (RetryLater("HTTP 503"), "retry_later", minutes(30), True),
        (RetryLater("HTTP 429", NOW + timedelta(seconds=5)), "retry_later", minutes(30), True),
    ],
    ids=["5xx", "bad document", "410", "retry-after", "retry-after capped", "503 bare", "short"],
)
def test_failures(failed: Failure, status: str, wait: timedelta, enabled: bool) -> None:
    update = failure(STATE, failed)
    assert update.status == status
    assert update.next_check_at == NOW + wait
    assert update.enabled is enabled
    assert update.error_count == 1
    assert update.last_error == failed.reason


def test_failures_in_a_row_back_off_and_keep_the_validators() -> None:
    update = failure(replace(STATE, error_count=2), Failed(ErrorKind.TIMEOUT, "timeout"))
    assert update.next_check_at == NOW + minutes(120)
    assert update.etag == '"old"'


def test_jitter_stays_within_ten_percent() -> None:
    rng = random.Random(7)
    waits = {
        after_success(
            STATE,
            None,
            DIGEST,
            interval_s=1800,
            schedule=SCHEDULE,
            now=NOW,
            rng=rng,
        ).next_check_at
        - NOW
        for _ in range(200)
    }
    assert len(waits) > 100
    assert min(waits) >= minutes(27)
    assert max(waits) <= minutes(33)


@pytest.mark.parametrize(
    ("changes", "force", "due"),
    [
        ({}, False, True),  # never checked
        ({"next_check_at": NOW + minutes(1)}, False, False),
        ({"next_check_at": NOW + minutes(1)}, True, True),
        ({"next_check_at": NOW}, False, True),
        ({"enabled": False}, True, False),
        ({"retry_after_until": NOW + minutes(5)}, True, False),
        ({"retry_after_until": NOW - minutes(5), "next_check_at": NOW}, False, True),
    ],
    ids=[
        "new",
        "not yet",
        "forced",
        "exactly due",
        "disabled",
        "retry-after",
        "retry-after passed",
    ],
)
def test_is_due(changes: dict[str, object], force: bool, due: bool) -> None:
    assert is_due(replace(STATE, **changes), NOW, force=force) is due  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("posts_per_week", "ttl_s", "expected_s"),
    [
        (None, None, 1800),  # rate unknown: the interval
        (14, None, 6 * 3600),  # two a day: every six hours
        (168, None, 1800),  # hourly: every half hour
        (100_000, None, 300),  # never faster than the floor
        (0, None, 86400),  # silent for four weeks: the ceiling
        (14, 12 * 3600, 12 * 3600),  # the feed's ttl asks for longer
    ],
)
def test_adaptive_interval_follows_the_publishing_rate(
    posts_per_week: float | None, ttl_s: int | None, expected_s: float
) -> None:
    assert poll_interval(1800, SCHEDULE, ttl_s=ttl_s, posts_per_week=posts_per_week) == expected_s


@pytest.mark.parametrize(
    ("ages_days", "expected"),
    [
        ([], None),
        ([40, 60], 0.0),
        ([0, 0.5, 1, 1.5, 2], 17.5),  # five posts over two days
        ([0], 7.0),  # one post today: at least a day's span
        ([-5, 40], 0.0),  # a date far in the future is ignored
    ],
)
def test_publishing_rate(ages_days: list[float], expected: float | None) -> None:
    dates = [NOW - timedelta(days=age) for age in ages_days]
    assert publishing_rate(dates, NOW) == expected


def test_sources_with_their_own_interval_do_not_adapt() -> None:
    busy = Digest(
        feed_title="Busy",
        posts=(),
        published_dates=tuple(NOW - timedelta(hours=h) for h in range(1, 49)),
    )
    fixed = replace(STATE, spec=SourceSpec(url=URL, interval_s=1800))

    adaptive_update = success(STATE, None, digest=busy)
    fixed_update = success(fixed, None, digest=busy)

    assert adaptive_update.posts_per_week == 168.0
    assert adaptive_update.next_check_at == NOW + minutes(30)  # hourly feed: every 30 min
    assert fixed_update.next_check_at == NOW + minutes(30)
    quiet = Digest(feed_title="Quiet", posts=(), published_dates=(NOW - timedelta(days=90),))
    assert success(STATE, None, digest=quiet).next_check_at == NOW + timedelta(hours=24)
    assert success(fixed, None, digest=quiet).next_check_at == NOW + minutes(30)


def test_not_modified_keeps_the_known_rate() -> None:
    known = replace(STATE, posts_per_week=14.0)
    update = success(known, NotModified(url=URL), digest=None)
    assert update.posts_per_week == 14.0
    assert update.next_check_at == NOW + timedelta(hours=6)


@pytest.mark.parametrize(
    ("push_until", "live", "expected_s"),
    [
        pytest.param(None, False, 1800, id="no subscription: the source's own interval"),
        pytest.param(NOW - minutes(1), False, 1800, id="lease ended: its own interval again"),
        pytest.param(NOW, False, 1800, id="lease ending now is not live"),
        pytest.param(NOW + timedelta(days=10), True, 86400, id="push live: max_interval"),
        pytest.param(NOW + timedelta(hours=3), True, 3 * 3600, id="no later than the lease end"),
        pytest.param(NOW + minutes(10), True, 1800, id="never sooner than its own interval"),
    ],
)
def test_while_a_hub_pushes_polling_slows_to_max_interval(
    push_until: datetime | None, live: bool, expected_s: float
) -> None:
    assert push_live(push_until, NOW) is live
    assert with_push(1800, SCHEDULE, push_until=push_until, now=NOW) == expected_s


def test_a_check_of_a_pushed_source_is_scheduled_at_the_long_interval() -> None:
    pushed = replace(STATE, push_until=NOW + timedelta(days=10))
    assert success(pushed, Fetched(url=URL, document=b"x")).next_check_at == NOW + timedelta(days=1)
    lapsed = replace(STATE, push_until=NOW - timedelta(days=1))
    assert success(lapsed, Fetched(url=URL, document=b"x")).next_check_at == NOW + minutes(30)
