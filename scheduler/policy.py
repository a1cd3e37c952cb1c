"""When to check a source next, and what a check changes on it: pure functions (DESIGN §5).

Nothing here reads a clock, a store or the network: ``now`` and a random generator come in, a
``SourceUpdate`` goes out. Table tests in ``tests/test_policy.py`` pin every rule.

- A success schedules the next check one interval ahead. A source with an interval of its own
  keeps it; the others adapt to how often they publish: about two checks per expected new post
  (posts per week, from the dates of the entries of the last four weeks), the ceiling for a
  feed silent for four weeks, the default interval while the rate is unknown. The feed's
  ``<ttl>``/``max-age`` stretch it when they ask for longer; the floor and the ceiling bound it;
  +-10 % jitter spreads sources apart.
- A failure backs off exponentially from the interval (x2 per failure in a row) up to the cap,
  with the same jitter; the error counter and the last error are kept; the next success resets
  both. A source is never dropped: it keeps being retried at the cap.
- 429/503 (``RetryLater``) wait for ``Retry-After`` (bounded here, at ``max_retry_after``), and
  even ``run --all`` respects it.
- 410 Gone (``Gone``) disables the source, with the reason kept.
- A bug in feed-ingest met while checking a source (``Failed`` of kind ``internal``) backs off
  like any failure, so a document that triggers it is not retried in a loop, but its status is
  ``bug``: it is never reported as the source's fault.
- While a WebSub hub pushes the source's new content to us (an active subscription whose lease
  has not ended: ``SourceState.push_until``), polling is only a safety net: a healthy source is
  polled at ``max_interval``, yet never later than the lease's end, from which it is polled at
  its own pace again (``with_push``).
- A permanent redirect (301/308) moves the stored URL once two checks in a row saw the same
  target; one sighting alone could be a misconfigured server.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from ingest.config import ScheduleSettings
from ingest.errors import ErrorKind
from ingest.types import (
    Digest,
    Failed,
    Failure,
    Fetched,
    Gone,
    NotModified,
    RetryLater,
    SourceState,
    SourceStatus,
    SourceUpdate,
)

JITTER = 0.1
REDIRECT_CHECKS = 2
WEEK_S = 7 * 86400.0
RATE_WINDOW = timedelta(days=28)
CHECKS_PER_POST = 2
EARLIEST = datetime.min.replace(tzinfo=UTC)


def publishing_rate(dates: Iterable[datetime], now: datetime) -> float | None:
    """Posts per week, from the publish dates a document's entries carry.

    None when no entry is dated (unknown); 0 when none is from the last four weeks. The rate is
    taken over the span the recent entries cover, since feeds list only their latest entries.
    """
    dated = list(dates)
    if not dated:
        return None
    recent = [d for d in dated if now - RATE_WINDOW <= d <= now + timedelta(days=1)]
    if not recent:
        return 0.0
    span = max(now - min(recent), timedelta(days=1))
    return round(len(recent) / (span / timedelta(weeks=1)), 3)


def poll_interval(
    interval_s: float,
    schedule: ScheduleSettings,
    *,
    ttl_s: int | None = None,
    posts_per_week: float | None = None,
) -> float:
    """Seconds between checks of a healthy source (see the module docstring).

    ``posts_per_week`` is given only for sources that adapt (no interval of their own).
    """
    if posts_per_week is None:
        wanted = interval_s
    elif posts_per_week > 0:
        wanted = WEEK_S / (posts_per_week * CHECKS_PER_POST)
    else:
        wanted = schedule.max_interval
    wanted = max(wanted, ttl_s or 0)
    return min(max(wanted, schedule.min_interval), schedule.max_interval)


def push_live(push_until: datetime | None, now: datetime) -> bool:
    """Whether a hub pushes the source's content to us at ``now``: its subscription is active
    and its lease runs until ``push_until``."""
    return push_until is not None and push_until > now


def with_push(
    interval_s: float, schedule: ScheduleSettings, *, push_until: datetime | None, now: datetime
) -> float:
    """Seconds between polls of a healthy source whose interval would be ``interval_s``:
    that, unless push is live (``push_live``); then ``max_interval``, but no later than the
    lease's end, and never sooner than ``interval_s``."""
    if push_until is None or not push_live(push_until, now):
        return interval_s
    until_lease_end = (push_until - now).total_seconds()
    return max(interval_s, min(schedule.max_interval, until_lease_end))


def backoff_delay(error_count: int, interval_s: float, schedule: ScheduleSettings) -> float:
    """Seconds to wait after ``error_count`` failures in a row: doubling from the interval."""
    exponent = min(max(error_count - 1, 0), 32)
    return min(interval_s * float(2**exponent), schedule.backoff_cap)


def jittered(seconds: float, rng: random.Random) -> timedelta:
    return timedelta(seconds=seconds * rng.uniform(1 - JITTER, 1 + JITTER))


def after_success(
    state: SourceState,
    result: Fetched | NotModified | None,
    digest: Digest | None,
    *,
    interval_s: float,
    schedule: ScheduleSettings,
    now: datetime,
    rng: random.Random,
) -> SourceUpdate:
    """The source after a check that got a document (``digest``) or "not modified" (None).

    ``result`` is None for a local source.
    """
    redirect_url, redirect_count, move_to = _redirect(state, result)
    max_age = result.max_age_s if result else None
    ttl = max((digest.ttl_s if digest else None) or 0, max_age or 0) or state.ttl_s
    rate = publishing_rate(digest.published_dates, now) if digest else state.posts_per_week
    adapts = state.spec.interval_s is None
    interval = poll_interval(
        interval_s, schedule, ttl_s=ttl, posts_per_week=rate if adapts else None
    )
    interval = with_push(interval, schedule, push_until=state.push_until, now=now)
    parsed = digest is not None
    status = SourceStatus.OK if parsed else SourceStatus.NOT_MODIFIED
    if move_to:
        status = SourceStatus.MOVED
    return SourceUpdate(
        status=status,
        checked_at=now,
        next_check_at=now + jittered(interval, rng),
        url=move_to or state.url,
        enabled=True,
        title=(digest.feed_title if digest else None) or state.title,
        etag=result.etag if isinstance(result, Fetched) else state.etag,
        last_modified=result.last_modified if isinstance(result, Fetched) else state.last_modified,
        error_count=0,
        last_error=None,
        last_error_kind=None,
        retry_after_until=None,
        disabled_reason=None,
        redirect_url=redirect_url,
        redirect_count=redirect_count,
        ttl_s=ttl,
        posts_per_week=rate,
    )


def after_failure(
    state: SourceState,
    failure: Failure,
    *,
    interval_s: float,
    schedule: ScheduleSettings,
    now: datetime,
    rng: random.Random,
) -> SourceUpdate:
    """The source after a check that got no document: backed off, told to wait, or disabled.

    The error counter and the last error (its sentence and its kind) are kept on the source.
    """
    errors = state.error_count + 1
    status = SourceStatus.ERROR
    enabled = True
    disabled_reason = None
    retry_after_until = None
    wait = jittered(backoff_delay(errors, interval_s, schedule), rng)
    match failure:
        case Gone(reason=reason):
            status, enabled = SourceStatus.GONE, False
            disabled_reason = f"{reason} (on {now:%Y-%m-%d %H:%M} UTC)"
        case RetryLater(until=until):
            status = SourceStatus.RETRY_LATER
            if until is not None:
                bounded = min(until, now + timedelta(seconds=schedule.max_retry_after))
                retry_after_until = max(bounded, now)
                wait = max(wait, retry_after_until - now)
        case Failed(kind=ErrorKind.INTERNAL):
            status = SourceStatus.BUG
    return SourceUpdate(
        status=status,
        checked_at=now,
        next_check_at=now + wait,
        url=state.url,
        enabled=enabled,
        title=state.title,
        etag=state.etag,
        last_modified=state.last_modified,
        error_count=errors,
        last_error=failure.reason,
        last_error_kind=failure.kind,
        retry_after_until=retry_after_until,
        disabled_reason=disabled_reason,
        redirect_url=state.redirect_url,
        redirect_count=state.redirect_count,
        ttl_s=state.ttl_s,
        posts_per_week=state.posts_per_week,
    )


def _redirect(
    state: SourceState, result: Fetched | NotModified | None
) -> tuple[str | None, int, str | None]:
    """(redirect_url, redirect_count, move_to) after a check that saw ``result``."""
    target = result.permanent_redirect if result else None
    if not target:
        return None, 0, None
    count = state.redirect_count + 1 if target == state.redirect_url else 1
    if count >= REDIRECT_CHECKS:
        return None, 0, target
    return target, count, None


def due_at(state: SourceState) -> datetime | None:
    """The moment from which ``is_due`` holds without ``force``; None for a disabled source,
    which never comes due by itself. A source never checked is due from the earliest moment."""
    if not state.enabled:
        return None
    moments = [m for m in (state.next_check_at, state.retry_after_until) if m is not None]
    return max(moments, default=EARLIEST)


def is_due(state: SourceState, now: datetime, *, force: bool = False) -> bool:
    """Whether a pass at ``now`` should check ``state`` (``force``: ``run --all``).

    Forcing never overrides a server's ``Retry-After`` or a 410: those are the server's word.
    """
    if not state.enabled:
        return False
    if state.retry_after_until is not None and state.retry_after_until > now:
        return False
    return force or state.next_check_at is None or state.next_check_at <= now
