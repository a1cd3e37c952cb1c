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

The keep and block rules (``ingest.filters``) are applied last, once every entry is a post and
the document has decided the entries' keys, so what a rule drops never changes the identity of
what it keeps. A document whose every entry a rule drops is a success with no posts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from ingest.digest import DIGEST_BUDGET_S
from ingest.digest.normalize import FeedContext, post_from_entry, post_from_front_matter
from ingest.digest.parse import parse_feed, parse_front_matter
from ingest.digest.sanitize import html_to_text
from ingest.errors import DocumentError, EntryError, ErrorKind
from ingest.filters import EntryText, RuleSet, rejection
from ingest.identity import keyed
from ingest.types import Digest, FilteredEntry, Post, SourceSpec
from ingest.urls import is_http_url


def digest_feed(
    data: bytes,
    *,
    spec: SourceSpec,
    comments: bool,
    now: datetime,
    url: str = "",
    charset: str | None = None,
    rules: Sequence[RuleSet] = (),
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
    # Keys are decided per document: only it shows which entries share a guid (DESIGN §4).
    kept, filtered = screen(keyed(posts), rules)
    return Digest(
        feed_title=title,
        posts=kept,
        filtered=filtered,
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
    rules: Sequence[RuleSet] = (),
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
    kept, filtered = screen(posts, rules)
    return Digest(feed_title=None, posts=kept, filtered=filtered, skipped=tuple(skipped))


def screen(
    posts: Sequence[Post], rules: Sequence[RuleSet]
) -> tuple[tuple[Post, ...], tuple[FilteredEntry, ...]]:
    """(the posts ``rules`` let through, the entries they keep out and why)."""
    levels = [level for level in rules if level]
    if not levels:
        return tuple(posts), ()
    reads_body = any(level.reads_body for level in levels)
    kept: list[Post] = []
    filtered: list[FilteredEntry] = []
    for post in posts:
        text = EntryText.of(post, html_to_text(post.body) if reads_body else "")
        why = rejection(text, levels)
        if why is None:
            kept.append(post)
        else:
            filtered.append(FilteredEntry(post.guid, post.link, post.title, str(why)))
    return tuple(kept), tuple(filtered)


def fallback_name(url: str) -> str:
    """A feed name when neither the config nor the feed gives one: host or file name."""
    if is_http_url(url):
        return urlsplit(url).hostname or url
    return PurePosixPath(url.replace("\\", "/")).stem or url
