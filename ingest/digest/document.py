"""Bytes to posts: parse, then normalize each entry. The CPU-bound step of a pass.

These functions take and return plain picklable values so the pipeline can run them in worker
processes, both cores busy while the event loop keeps fetching. A bad entry is skipped and
its reason kept; a document that yields nothing usable is an error for its source.

A feed document gets a budget of CPU time (``DIGEST_BUDGET_S``): once parsing and the entries
digested so far have spent it, the remaining entries are skipped with that reason, so a document
built to be expensive (the sanitizer's limits bound each entry, not how many there are) costs
the pass seconds, not minutes. CPU time of this thread, not wall time: a busy machine does not
cut a legitimate feed short. The budget is checked between entries; what it cannot interrupt
(the parse, one entry) is bounded by the time limit of ``ingest.pipeline.workers``.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from ingest.digest.normalize import FeedContext, post_from_entry, post_from_front_matter
from ingest.digest.parse import parse_feed, parse_front_matter
from ingest.digest.sanitize import html_to_text
from ingest.errors import DocumentError, EntryError, ErrorKind
from ingest.identity import keyed
from ingest.types import Digest, Post, SourceSpec
from ingest.urls import is_http_url

DIGEST_BUDGET_S = 10.0
"""CPU seconds one feed document may take to digest: 4,000 ordinary entries (17 MiB) take
3.5 here; the 2.2 MB document built to stall the sanitizer took 127."""


def digest_feed(
    data: bytes,
    *,
    spec: SourceSpec,
    comments: bool,
    now: datetime,
    url: str = "",
    charset: str | None = None,
    budget_s: float = DIGEST_BUDGET_S,
) -> Digest:
    """The posts of a feed document fetched from ``url`` (empty for a local file), digested
    within ``budget_s`` CPU seconds (see the module docstring)."""
    started = time.thread_time()
    feed = parse_feed(data, source=spec.url, url=url, http_charset=charset)
    title = html_to_text(feed.title) if feed.title else None
    ctx = FeedContext(
        categories=spec.categories,
        feed_name=spec.name or title or fallback_name(spec.url),
        feed_author=feed.author,
        comments=comments,
        now=now,
    )
    posts: list[Post] = []
    skipped = list(feed.bad_entries)
    for index, raw in enumerate(feed.entries, start=1):
        if time.thread_time() - started > budget_s:
            skipped.extend(
                f"entry {number}: not read: reading this document took more than "
                f"{budget_s:g}s of CPU time (it is unusually large or built to be expensive)"
                for number in range(index, len(feed.entries) + 1)
            )
            break
        try:
            posts.append(post_from_entry(raw, ctx))
        except EntryError as exc:
            skipped.append(str(exc))
    if not posts and skipped:
        raise DocumentError(
            spec.url,
            f"no usable entries ({len(skipped)} skipped: {skipped[0]})",
            kind=ErrorKind.NO_ENTRIES,
        )
    return Digest(
        feed_title=title,
        # Keys are decided per document: only it shows which entries share a guid (DESIGN §4).
        posts=tuple(keyed(posts)),
        skipped=tuple(skipped),
        ttl_s=feed.ttl_s,
        published_dates=tuple(d for raw in feed.entries if (d := raw.published or raw.updated)),
        unreadable_dates=tuple(t for raw in feed.entries for t in raw.unreadable_dates),
        hub=feed.hub,
        self_url=feed.self_url,
    )


def digest_posts(
    files: tuple[tuple[str, str], ...],
    skipped_files: tuple[str, ...],
    *,
    spec: SourceSpec,
    comments: bool,
    now: datetime,
) -> Digest:
    """The posts of front-matter files, given as (key, text) pairs."""
    ctx = FeedContext(
        categories=spec.categories,
        feed_name=spec.name or fallback_name(spec.url),
        feed_author=None,
        comments=comments,
        now=now,
    )
    posts: list[Post] = []
    skipped = list(skipped_files)
    for key, text in files:
        try:
            meta, body = parse_front_matter(text, source=key)
            posts.append(post_from_front_matter(meta, body, key=key, ctx=ctx))
        except (DocumentError, EntryError) as exc:
            skipped.append(str(exc))
    if not posts:
        reason = f"{len(skipped)} skipped: {skipped[0]}" if skipped else "the folder is empty"
        raise DocumentError(spec.url, f"no usable posts ({reason})", kind=ErrorKind.NO_ENTRIES)
    return Digest(
        feed_title=None,
        posts=tuple(posts),
        skipped=tuple(skipped),
    )


def fallback_name(url: str) -> str:
    """A feed name when neither the config nor the feed gives one: host or file name."""
    if is_http_url(url):
        return urlsplit(url).hostname or url
    return PurePosixPath(url.replace("\\", "/")).stem or url
