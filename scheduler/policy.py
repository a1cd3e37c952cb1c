"""When to check a source next, and what a check changes on it: pure functions (DESIGN §5).

Nothing here reads a clock, a store or the network: ``now`` and a random generator come in, a
``FeedUpdate`` goes out. Table tests in ``tests/test_policy.py`` pin every rule.

- A success schedules the next check one interval ahead. The interval is the source's own
  (or the default), stretched to the feed's ``<ttl>``/``max-age`` when those ask for longer,
  and kept between the floor and the ceiling; +-10 % jitter spreads sources apart.
- A failure backs off exponentially from the interval (x2 per failure in a row) up to the cap,
  with the same jitter; the error counter and the last error are kept; the next success resets
  both. A source is never dropped: it keeps being retried at the cap.
- 429/503 wait for ``Retry-After`` (bounded), and even ``run --all`` respects it.
- 410 Gone disables the source, with the reason kept.
- A permanent redirect (301/308) moves the stored URL once two checks in a row saw the same
  target; one sighting alone could be a misconfigured server.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from ingest.config import ScheduleSettings
from ingest.errors import FetchError, SourceError
from ingest.types import FeedState, FeedStatus, FeedUpdate, FetchResult

JITTER = 0.1
REDIRECT_CHECKS = 2


def poll_interval(
    interval_s: float, schedule: ScheduleSettings, *, ttl_s: int | None = None
) -> float:
    """Seconds between checks of a healthy source: at least its ttl, within floor and ceiling."""
    wanted = max(interval_s, ttl_s or 0)
    return min(max(wanted, schedule.min_interval), schedule.max_interval)


def backoff_delay(error_count: int, interval_s: float, schedule: ScheduleSettings) -> float:
    """Seconds to wait after ``error_count`` failures in a row: doubling from the interval."""
    exponent = min(max(error_count - 1, 0), 32)
    return min(interval_s * float(2**exponent), schedule.backoff_cap)


def jittered(seconds: float, rng: random.Random) -> timedelta:
    return timedelta(seconds=seconds * rng.uniform(1 - JITTER, 1 + JITTER))


def after_success(
    state: FeedState,
    result: FetchResult | None,
    *,
    title: str | None,
    ttl_s: int | None,
    parsed: bool,
    interval_s: float,
    schedule: ScheduleSettings,
    now: datetime,
    rng: random.Random,
) -> FeedUpdate:
    """The source after a check that got a document (``parsed``) or "not modified".

    ``result`` is None for a local source; ``ttl_s`` is the feed's ``<ttl>`` when it was parsed.
    """
    redirect_url, redirect_count, move_to = _redirect(state, result)
    max_age = result.max_age_s if result else None
    ttl = max(ttl_s or 0, max_age or 0) or state.ttl_s
    status = FeedStatus.OK if parsed else FeedStatus.NOT_MODIFIED
    if move_to:
        status = FeedStatus.MOVED
    return FeedUpdate(
        status=status,
        checked_at=now,
        next_check_at=now + jittered(poll_interval(interval_s, schedule, ttl_s=ttl), rng),
        url=move_to or state.url,
        enabled=True,
        title=title or state.title,
        etag=(result.etag if result and parsed else state.etag),
        last_modified=(result.last_modified if result and parsed else state.last_modified),
        error_count=0,
        last_error=None,
        retry_after_until=None,
        disabled_reason=None,
        redirect_url=redirect_url,
        redirect_count=redirect_count,
        ttl_s=ttl,
    )


def after_failure(
    state: FeedState,
    error: SourceError,
    *,
    interval_s: float,
    schedule: ScheduleSettings,
    now: datetime,
    rng: random.Random,
) -> FeedUpdate:
    """The source after a failed check: backed off, told to wait, or disabled (410)."""
    errors = state.error_count + 1
    status = FeedStatus.ERROR
    enabled = True
    disabled_reason = None
    retry_after_until = None
    wait = jittered(backoff_delay(errors, interval_s, schedule), rng)
    if error.kind == "gone":
        status, enabled = FeedStatus.GONE, False
        disabled_reason = f"{error.reason} (on {now:%Y-%m-%d %H:%M} UTC)"
    elif isinstance(error, FetchError) and error.kind == "retry_later":
        status = FeedStatus.RETRY_LATER
        if error.retry_after is not None:
            bounded = min(error.retry_after, now + timedelta(seconds=schedule.max_retry_after))
            retry_after_until = max(bounded, now)
            wait = max(wait, retry_after_until - now)
    return FeedUpdate(
        status=status,
        checked_at=now,
        next_check_at=now + wait,
        url=state.url,
        enabled=enabled,
        title=state.title,
        etag=state.etag,
        last_modified=state.last_modified,
        error_count=errors,
        last_error=error.reason,
        retry_after_until=retry_after_until,
        disabled_reason=disabled_reason,
        redirect_url=state.redirect_url,
        redirect_count=state.redirect_count,
        ttl_s=state.ttl_s,
    )


def _redirect(state: FeedState, result: FetchResult | None) -> tuple[str | None, int, str | None]:
    """(redirect_url, redirect_count, move_to) after a check that saw ``result``."""
    target = result.permanent_redirect if result else None
    if not target:
        return None, 0, None
    count = state.redirect_count + 1 if target == state.redirect_url else 1
    if count >= REDIRECT_CHECKS:
        return None, 0, target
    return target, count, None


def is_due(state: FeedState, now: datetime, *, force: bool = False) -> bool:
    """Whether a pass at ``now`` should check ``state`` (``force``: ``run --all``).

    Forcing never overrides a server's ``Retry-After`` or a 410: those are the server's word.
    """
    if not state.enabled:
        return False
    if state.retry_after_until is not None and state.retry_after_until > now:
        return False
    return force or state.next_check_at is None or state.next_check_at <= now
