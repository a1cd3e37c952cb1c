"""What a merged feed holds: the store's one deduplicated stream of posts, or the part of it one
category or one source gives, newest first, and the stable ids it is published under.

Both ways out use it: ``ingest export --format`` (a file) and ``ingest serve`` (``/feeds/...``,
``ingest.publish.feedapp``); ``ingest.publish.syndicate`` writes the result as Atom or JSON Feed.

Ids (``docs/decisions.md``, "Merged feeds out") are ``urn:uuid:`` URNs of name-based UUIDs
(RFC 4122 version 5) in feed-ingest's own namespace, so they are valid Atom ids (IRIs) that
need no domain name and stay the same on every run:

- an entry's: its post id and the time it was first stored, which no edit of the post changes
  (its content hash does), and which keep two stores' posts apart;
- a feed's: what it selects, the category case-folded (``Tech`` and ``tech`` are one feed);
  ``--since`` and ``--limit`` only cut the same feed shorter;
- a source's (the provenance of an entry, Atom's ``<source>``): the source's id, the same id as
  that source's own merged feed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath
from urllib.parse import urlsplit

from ingest.errors import FeedChoiceError
from ingest.publish.formats import DEFAULT_LIMIT
from ingest.types import StoredPost, StoredSource
from ingest.urls import is_http_url
from storage import PostFilter, Store

NAMESPACE = uuid.UUID("0b6c3f1e-5a2d-4f0e-9c8b-3e1f7d2a9c41")
"""feed-ingest's namespace of name-based UUIDs; never changes, or every id would."""


@dataclass(frozen=True, slots=True)
class Selection:
    """Which posts a merged feed holds; every field given narrows it further.

    ``category`` matches in any case; ``since`` is a UTC publish date; ``title`` replaces the
    feed's default title.
    """

    category: str | None = None
    source_id: int | None = None
    since: datetime | None = None
    limit: int = DEFAULT_LIMIT
    title: str | None = None


@dataclass(frozen=True, slots=True)
class MergedFeed:
    """A merged feed ready to be written: its id, title, posts (newest first) and the sources
    they came from, by id (a post whose first source was removed has none)."""

    id: str
    title: str
    posts: tuple[StoredPost, ...]
    sources: Mapping[int, StoredSource]

    @property
    def updated(self) -> datetime | None:
        """When its newest change happened: the latest ``updated`` of its posts (None when it
        has none). A post's edit updates the feed; a post outside the feed does not."""
        return max((stored.updated for stored in self.posts), default=None)

    def source_of(self, stored: StoredPost) -> StoredSource | None:
        return None if stored.source_id is None else self.sources.get(stored.source_id)


def merged_feed(store: Store, selection: Selection) -> MergedFeed:
    """The merged feed ``selection`` asks for, read from ``store``.

    Raises FeedChoiceError when it names a source that does not exist or a category no stored
    post has (whatever ``since``: an old category is still a category, its feed just empty).
    """
    sources = {source.id: source for source in store.list_sources()}
    titles = []
    if selection.source_id is not None:
        source = sources.get(selection.source_id)
        if source is None:
            raise FeedChoiceError(f"no source with id {selection.source_id}")
        titles.append(source_title(source))
    if selection.category is not None:
        if not store.list_posts(limit=1, where=PostFilter(category=selection.category)):
            raise FeedChoiceError(f"no post has the category {selection.category!r}")
        titles.append(selection.category)
    where = PostFilter(
        source_id=selection.source_id, category=selection.category, since=selection.since
    )
    posts = store.list_posts(limit=selection.limit, where=where)
    return MergedFeed(
        id=feed_id(selection),
        title=selection.title or " · ".join(titles) or "All posts",
        posts=tuple(posts),
        sources=sources,
    )


def feed_id(selection: Selection) -> str:
    """The id of the feed ``selection`` asks for (the module docstring says from what)."""
    parts = ["feed"]
    if selection.source_id is not None:
        parts.append(f"source:{selection.source_id}")
    if selection.category is not None:
        parts.append(f"category:{selection.category.casefold()}")
    if len(parts) == 1:
        parts.append("all")
    return _urn("/".join(parts))


def provenance_id(source: StoredSource) -> str:
    """The id naming ``source`` as an entry's provenance: its own merged feed's id."""
    return feed_id(Selection(source_id=source.id))


def entry_id(stored: StoredPost) -> str:
    """The id of ``stored`` as an entry: the same on every run and after every edit."""
    return _urn(f"post:{stored.id}:{stored.first_seen.isoformat()}")


def source_title(source: StoredSource) -> str:
    """What a published feed calls ``source``: its configured name, else the feed's title,
    else its URL's host or its path's last part (never the whole: a URL may carry credentials,
    and a local path is the operator's business)."""
    named = source.spec.name or source.title
    if named:
        return named
    url = source.spec.url
    if is_http_url(url):
        return urlsplit(url).hostname or url
    return PurePath(url).name or url


def _urn(name: str) -> str:
    return uuid.uuid5(NAMESPACE, name).urn
