"""Builders for store tests: posts, sources and checks with only the fields a test cares about."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.config import ScheduleSettings
from ingest.identity import content_hash, decide
from ingest.types import Change, Check, Digest, Post, SourceSpec, SourceState, SourceUpdate
from scheduler.policy import after_success
from storage import Store

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
SCHEDULE = ScheduleSettings(
    min_interval=300,
    max_interval=86400,
    backoff_cap=86400,
    max_retry_after=7 * 86400,
    lease=60,
)


def a_post(
    key: str,
    text: str,
    *,
    title: str | None = None,
    categories: tuple[str, ...] = ("新媒体",),
    published: datetime = NOW - timedelta(days=1),
) -> Post:
    """A post whose guid is ``key`` and whose body is one paragraph of ``text``."""
    title = f"T {text}" if title is None else title
    body = f"<p>{text}</p>"
    return Post(
        title=title,
        categories=categories,
        headimg=None,
        author="a",
        comments=False,
        published=published,
        thumbnail=None,
        body=body,
        guid=key,
        link=f"https://x.example/{key}",
        content_hash=content_hash(title, body),
    )


def a_state(source_id: int = 1, url: str | None = None, **changes: Any) -> SourceState:
    """A never-checked source as the store would hand it over, with ``changes`` applied."""
    url = url or f"https://x.example/{source_id}"
    state = SourceState(
        id=source_id,
        url=url,
        spec=SourceSpec(url=url),
        enabled=True,
        title=None,
        etag=None,
        last_modified=None,
        last_checked_at=None,
        next_check_at=None,
        error_count=0,
        retry_after_until=None,
        disabled_reason=None,
        redirect_url=None,
        redirect_count=0,
        ttl_s=None,
    )
    return replace(state, **changes)


def a_source(store: Store, url: str = "https://x.example/feed") -> SourceState:
    (source_id,) = store.apply_sources([SourceSpec(url=url)], origin="config", now=NOW)
    (state,) = store.load_states([source_id])
    return state


def ok(state: SourceState) -> SourceUpdate:
    """The state update of a successful check of ``state`` at ``NOW``."""
    return after_success(
        state,
        None,
        Digest(feed_title="Feed", posts=()),
        interval_s=1800,
        schedule=SCHEDULE,
        now=NOW,
        rng=random.Random(1),
    )


def record_check(
    store: Store,
    state: SourceState,
    posts: Sequence[Post],
    change: SourceUpdate,
    *,
    now: datetime = NOW,
    owner: str | None = None,
) -> Counter[Change] | None:
    """Store one check as the store writer does (``ingest.identity.decide`` deciding); what
    happened to its posts, None when ``owner`` no longer held the lease."""
    return store.record_checks([Check(state, posts, change, now, owner)], decide=decide)[0]


def store_posts(
    store: Store, posts: Sequence[Post], url: str = "https://x.example/feed"
) -> SourceState:
    """Store ``posts`` as one successful check of the source at ``url``; that source."""
    state = a_source(store, url)
    record_check(store, state, posts, ok(state), now=NOW)
    return state
