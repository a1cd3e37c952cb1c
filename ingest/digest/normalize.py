"""Mapping raw entries and front-matter files onto the post schema (DESIGN §1).

Each rule of the schema table is one line here, in the table's order, so the two can be read
side by side. Pure functions: no I/O, no clock (``now`` comes in with the context).

Whatever a feed says, a post holds no control character in any text field and no URL but an
absolute http(s) one as a browser reads it (DESIGN §3): ``_post`` passes every field through
``clean_text`` and every URL through ``web_url``, so no path to a post can skip them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from ingest.digest.dates import parse_date
from ingest.digest.sanitize import clean_text, first_image, html_to_text, sanitize_html
from ingest.errors import EntryError
from ingest.identity import content_hash
from ingest.types import Post, RawEntry
from ingest.urls import web_url

TITLE_FROM_BODY_CHARS = 80


@dataclass(frozen=True, slots=True)
class FeedContext:
    """What the schema needs besides an entry: the source's settings and the feed's metadata.

    ``feed_name`` is the configured name, else the feed's own title, else the source's file or
    host name; ``now`` stands in for the first-seen time of undated entries.
    """

    categories: tuple[str, ...]
    feed_name: str
    feed_author: str | None
    comments: bool
    now: datetime


def post_from_entry(raw: RawEntry, ctx: FeedContext) -> Post:
    """The post for one feed entry. Raises EntryError when it has neither title nor text, or
    markup nested too deep to clean."""
    body = _body(raw.body_html, raw.base, raw.guid or raw.link)
    title = html_to_text(raw.title) if raw.title_is_html else raw.title
    headimg = first_image(body) or _first_web_url(raw.images, raw.base)
    return _post(
        title=title,
        source_categories=(*ctx.categories, ctx.feed_name),
        tags=raw.tags,
        headimg=headimg,
        author=_name(raw.author) or _name(ctx.feed_author) or ctx.feed_name,
        comments=ctx.comments,
        published=raw.published or raw.updated or ctx.now,
        thumbnail=headimg,
        body=body,
        guid=raw.guid,
        link=_web_url(raw.link, raw.base),
        media=_unique_urls(raw.media, raw.base),
    )


def post_from_front_matter(
    meta: dict[str, Any], content: str, *, key: str, ctx: FeedContext
) -> Post:
    """The post for one front-matter file; ``key`` (its path in the folder) is its guid."""
    body = _body(content, "", key)
    headimg = _web_url(meta.get("headimg")) or first_image(body)
    comments = meta.get("comments")
    return _post(
        title=str(meta.get("title") or ""),
        # A front-matter file's categories are the folders it was filed in (Hexo reads them
        # as a hierarchy), not loose tags: they stay the source's own.
        source_categories=(*ctx.categories, *_as_list(meta.get("categories"))),
        headimg=headimg,
        author=_name(_scalar(meta.get("author"))) or ctx.feed_name,
        comments=comments if isinstance(comments, bool) else ctx.comments,
        published=_front_matter_date(meta.get("date"), key) or ctx.now,
        thumbnail=_web_url(meta.get("thumbnail")) or headimg,
        body=body,
        guid=key,
        link=_web_url(meta.get("link")),
    )


def _body(markup: str, base: str, entry: str | None) -> str:
    """Sanitized HTML of a body; EntryError naming ``entry`` when it cannot be cleaned."""
    try:
        return sanitize_html(markup, base).strip()
    except EntryError as exc:
        raise EntryError(f"entry {entry or '(no id)'}: {exc}") from exc


def _post(
    *,
    title: str,
    source_categories: Iterable[str],
    tags: Iterable[str] = (),
    headimg: str | None,
    author: str,
    comments: bool,
    published: datetime,
    thumbnail: str | None,
    body: str,
    guid: str | None,
    link: str | None,
    media: tuple[str, ...] = (),
) -> Post:
    body = clean_text(body, multiline=True)
    title = clean_text(title)
    guid = (clean_text(guid) or None) if guid else None
    # Never empty (DESIGN §1): the body's first words, else the link a link-only entry has.
    title = title or html_to_text(body)[:TITLE_FROM_BODY_CHARS].rstrip() or link or ""
    if not title:
        raise EntryError(f"entry {guid or '(no id)'} has no title, no text and no link")
    own = _unique(source_categories)
    return Post(
        title=title,
        categories=(*own, *(tag for tag in _unique(tags) if tag not in own)),
        headimg=headimg,
        author=clean_text(author),
        comments=comments,
        published=published,
        thumbnail=thumbnail,
        body=body,
        guid=guid,
        link=link,
        content_hash=content_hash(title, body, media),
        media=media,
        source_categories=len(own),
    )


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    """Non-empty names, cleaned, first occurrence kept (DESIGN §1: order kept, no duplicates)."""
    seen: dict[str, None] = {}
    for name in names:
        cleaned = html_to_text(str(name))
        if cleaned:
            seen.setdefault(cleaned, None)
    return tuple(seen)


def _name(value: str | None) -> str | None:
    return html_to_text(value) or None if value else None


def _scalar(value: object) -> str | None:
    return str(value) if isinstance(value, str | int | float) else None


def _as_list(value: object) -> list[str]:
    """A front-matter list, or a bare string as a one-item list."""
    if isinstance(value, list | tuple):
        return [str(v) for v in value if isinstance(v, str | int | float)]
    scalar = _scalar(value)
    return [scalar] if scalar else []


def _web_url(value: object, base: str = "") -> str | None:
    """``value`` as a stored URL (``web_url``), or None when it is not one."""
    return web_url(value, base) if isinstance(value, str) and value.strip() else None


def _unique_urls(urls: Iterable[str], base: str) -> tuple[str, ...]:
    """The web URLs among ``urls``, first occurrence kept: a feed that lists one file as both
    enclosure and media:content carries it once."""
    return tuple(dict.fromkeys(url for candidate in urls if (url := _web_url(candidate, base))))


def _first_web_url(urls: Iterable[str], base: str) -> str | None:
    """The first of ``urls`` that is a web URL (media images, in the feed's order)."""
    return next((url for candidate in urls if (url := _web_url(candidate, base))), None)


def _front_matter_date(value: object, key: str) -> datetime | None:
    """A front-matter ``date``: text in a form ``parse_date`` reads, or a YAML date/timestamp;
    UTC."""
    if value is None or value == "":
        return None
    parsed: datetime | None = None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time())
    elif isinstance(value, str):
        parsed = parse_date(value)
    if parsed is None:
        raise EntryError(f"{key}: date {value!r} is not a date format feed-ingest reads")
    return parsed.replace(tzinfo=parsed.tzinfo or UTC).astimezone(UTC)
