"""Reading feed documents and front-matter posts into format-neutral raw entries.

feedparser is called here and nowhere else (``ingest.digest.fast`` borrows a few of its helpers,
to read exactly alike). Three of its defaults are unsafe or slow for a poller, so it is always
called the same way (docs/decisions.md, "Parsing and normalizing"):

- the DOCTYPE is cut out of the prolog first: feedparser's loose fallback parser expands internal
  entities without limit, so one large entity referenced thousands of times costs gigabytes;
- its sanitizer is off (nh3 does that job properly, later) and so is its relative-URI rewriting
  of HTML (nh3 resolves URLs while sanitizing, several times faster);
- it is only ever given bytes, never a string, which it would take for a URL or a file name.

Encodings are settled before feedparser sees the document (``ingest.digest.encoding``); it receives
UTF-8 with a matching declaration.
"""

from __future__ import annotations

import calendar
import json
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import feedparser
import frontmatter
import yaml

from ingest.digest import fast
from ingest.digest.dates import read_date, unreadable
from ingest.digest.encoding import decode
from ingest.digest.people import patch_feedparser
from ingest.digest.prefilter import without_strays
from ingest.digest.sanitize import text_to_html
from ingest.errors import DocumentError, ErrorKind
from ingest.types import RawEntry, RawFeed
from ingest.urls import is_http_url, link_base

patch_feedparser()  # its author split, fixed (ingest.digest.people), before any document

_XML_DECL_ENCODING = re.compile(r"""^(<\?xml[^>]*?\bencoding\s*=\s*)(["'])[^"']*\2""")
_HTML_START = re.compile(r"<(?:html|head|body)[\s>]", re.IGNORECASE)
_FEED_LINK = re.compile(
    r"""<link\b[^>]*\btype=["']application/(?:rss|atom)\+xml["'][^>]*>""", re.IGNORECASE
)
_HREF = re.compile(r"""\bhref=["']([^"']+)["']""", re.IGNORECASE)
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "html", "xhtml"})


def parse_feed(
    data: bytes, *, source: str, url: str = "", http_charset: str | None = None
) -> RawFeed:
    """A feed document's entries.

    ``source`` names the source in errors; ``url`` is the document's http(s) URL, against which
    relative links are resolved (empty for a local file: its channel ``<link>`` is used instead)
    without its credentials (``link_base``), so that no post carries them. Raises DocumentError
    when the bytes are not a feed.
    """
    url = link_base(url)
    text = decode(data, http_charset).lstrip("\ufeff \t\r\n")
    if not text:
        raise DocumentError(source, "the document is empty", kind=ErrorKind.EMPTY)
    if text[0] in "{[":
        return _parse_json_feed(text, source=source, url=url)
    text = _without_doctype(text)
    if _HTML_START.match(text, _skip_prolog(text)):
        raise DocumentError(source, _html_page_reason(text, url), kind=ErrorKind.HTML_PAGE)
    return _parse_xml_feed(text, source=source, url=url)


# --- XML ------------------------------------------------------------------------------------


def _skip_prolog(text: str, pos: int = 0) -> int:
    """Index of the first thing after the XML declaration, PIs, comments and whitespace."""
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if text.startswith("<?", pos):
            end = text.find("?>", pos)
        elif text.startswith("<!--", pos):
            end = text.find("-->", pos)
        else:
            return pos
        if end < 0:
            return len(text)
        pos = end + 2 + (text[end] == "-")


def _doctype_end(text: str, start: int) -> int:
    """Index just past the ``>`` closing the DOCTYPE at ``start``; quotes and ``[...]`` honoured."""
    depth = 0
    quote = ""
    for index in range(start + 9, len(text)):
        char = text[index]
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth = max(depth - 1, 0)
        elif char == ">" and depth == 0:
            return index + 1
    return len(text)


def _without_doctype(text: str) -> str:
    """``text`` without its DOCTYPE, and with its declaration saying UTF-8 (what it will be)."""
    text = _XML_DECL_ENCODING.sub(r"\1\2utf-8\2", text, count=1)
    pos = _skip_prolog(text)
    while text[pos : pos + 9].upper() == "<!DOCTYPE":
        text = text[:pos] + text[_doctype_end(text, pos) :]
        pos = _skip_prolog(text, pos)
    return text


def _html_page_reason(text: str, url: str) -> str:
    reason = "got an HTML page, not a feed"
    link = _FEED_LINK.search(text[:200_000])
    href = _HREF.search(link.group(0)) if link else None
    if href:
        return f"{reason}; the page points to a feed at {urljoin(url, href.group(1))}"
    return f"{reason}; check the URL"


def _parse_xml_feed(text: str, *, source: str, url: str) -> RawFeed:
    # Well-formed RSS 2.0, RSS 1.0 and Atom go through lxml when it reads them exactly as
    # feedparser does (``ingest.digest.fast``), which reads an item's own children and no empty
    # link by itself. Everything else, and anything it declines, goes through feedparser, with
    # the elements it would misread hidden first (``ingest.digest.prefilter``).
    parsed = fast.read(text)
    if parsed is None:
        # No content-location: given one, feedparser joins URLs on every start tag (13 % of its
        # time). It still applies xml:base; what stays relative is joined here, once per entry.
        parsed = feedparser.parse(
            without_strays(text.encode("utf-8")),
            sanitize_html=False,
            resolve_relative_uris=False,
            response_headers={"content-type": "application/xml; charset=utf-8"},
        )
    feed: Mapping[str, Any] = parsed.get("feed", {})
    if not parsed.get("version") and not parsed.entries:
        problem = parsed.get("bozo_exception")
        detail = f" ({problem})" if problem else ""
        raise DocumentError(
            source, f"not an RSS, Atom or JSON feed{detail}", kind=ErrorKind.NOT_A_FEED
        )

    feed_link = _joined(url, _text(feed.get("link")))
    fallback_base = url or (feed_link if feed_link and is_http_url(feed_link) else "")
    entries: list[RawEntry] = []
    bad: list[str] = []
    for index, entry in enumerate(parsed.entries):
        try:
            # As a plain dict: every key read here is one feedparser stores as is, and a
            # FeedParserDict's get() is a Python call per read (a fifth of parsing).
            entries.append(_raw_entry(dict(entry), fallback_base))
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            bad.append(f"entry {index + 1}: {exc}")
    links = [link for link in feed.get("links") or () if isinstance(link, Mapping)]
    return RawFeed(
        title=_text(feed.get("title")),
        link=feed_link,
        author=_people(feed),
        ttl_s=_ttl_seconds(feed.get("ttl")),
        entries=tuple(entries),
        bad_entries=tuple(bad),
        hub=_link_of(links, "hub", url),
        self_url=_link_of(links, "self", url),
    )


def _link_of(links: Iterable[Mapping[str, Any]], rel: str, base: str) -> str | None:
    """The first http(s) URL of a feed-level ``<link rel=...>`` (``atom:link`` in RSS): how a
    feed names its WebSub hub and itself (WebSub §4)."""
    for link in links:
        href = _joined(base, _text(link.get("href")))
        if link.get("rel") == rel and href and is_http_url(href):
            return href
    return None


def _raw_entry(entry: dict[str, Any], fallback_base: str) -> RawEntry:
    body, base = _body(entry)
    title_detail = entry.get("title_detail") or {}
    # Our reading of the text first; feedparser's only where it agrees (ingest.digest.dates).
    # A plain dict's get: feedparser's own maps updated to published, with a warning.
    published_text, updated_text = entry.get("published"), entry.get("updated")
    published = read_date(published_text, _struct_to_utc(entry.get("published_parsed")))
    updated = read_date(updated_text, _struct_to_utc(entry.get("updated_parsed")))
    return RawEntry(
        guid=_text(entry.get("id")),
        link=_entry_link(entry, fallback_base),
        title=_text(entry.get("title")) or "",
        title_is_html=title_detail.get("type") in _HTML_TYPES,
        body_html=body,
        base=_joined(fallback_base, base) or fallback_base,
        author=_people(entry),
        published=published,
        updated=updated,
        tags=tuple(
            t
            for tag in entry.get("tags") or ()
            if (t := _text(tag.get("label") or tag.get("term")))
        ),
        images=tuple(_entry_images(entry)),
        media=tuple(_entry_media(entry)),
        unreadable_dates=unreadable((published_text, published), (updated_text, updated)),
    )


def _entry_link(entry: Mapping[str, Any], base: str) -> str | None:
    """The link the entry gave. feedparser copies a permalink guid into ``link`` when there is
    no link element (``guidislink``, for Atom ids too); such a link counts only when the guid is
    itself an absolute web URL (RSS's permalink), never a tag URI, nor an id made absolute
    against the feed's URL, which would invent a page (docs/decisions.md)."""
    link = _text(entry.get("link"))
    if entry.get("guidislink") and link == _text(entry.get("id")):
        return link if is_http_url(link) else None
    return _joined(base, link)


def _body(entry: Mapping[str, Any]) -> tuple[str, str]:
    """The fullest body (content over summary, HTML over text) as HTML, and its base URL."""
    details = list(entry.get("content") or ())
    details.sort(key=lambda d: d.get("type") not in _HTML_TYPES)  # stable: HTML first
    summary = entry.get("summary_detail")
    if summary:
        details.append(summary)
    for detail in details:
        value = detail.get("value") or ""
        if value.strip():
            html = value if detail.get("type") in _HTML_TYPES else text_to_html(value)
            return html, detail.get("base") or ""
    return "", ""


def _entry_images(entry: Mapping[str, Any]) -> Iterator[str]:
    for thumb in entry.get("media_thumbnail") or ():
        yield thumb.get("url") or ""
    for media in entry.get("media_content") or ():
        if media.get("medium") == "image" or str(media.get("type", "")).startswith("image/"):
            yield media.get("url") or ""
    for link in entry.get("links") or ():
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/"):
            yield link.get("href") or ""
    image = entry.get("image")
    if isinstance(image, Mapping):
        yield image.get("href") or ""


def _entry_media(entry: Mapping[str, Any]) -> Iterator[str]:
    """Enclosure URLs, then media:content URLs, each in document order, whatever their type."""
    for link in entry.get("links") or ():
        if link.get("rel") == "enclosure":
            yield link.get("href") or ""
    for media in entry.get("media_content") or ():
        yield media.get("url") or ""


def _people(item: Mapping[str, Any]) -> str | None:
    """Every author's name (``author``, ``dc:creator``, Atom ``author``) in document order, as
    one string (docs/decisions.md, "Several authors"); feedparser's own ``author`` keeps only
    the last. An author given only as an e-mail address is that address."""
    names = [_text(person.get("name")) for person in item.get("authors") or ()]
    return _joined_names(names) or _text(item.get("author"))


def _joined_names(names: Iterable[str | None]) -> str | None:
    """``names`` without blanks and repeats, in their order, joined by ", "; None if none."""
    return ", ".join(dict.fromkeys(name for name in names if name)) or None


def _struct_to_utc(value: time.struct_time | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _ttl_seconds(value: object) -> int | None:
    try:
        minutes = int(str(value).strip())
    except ValueError:
        return None
    return minutes * 60 if minutes > 0 else None


# --- JSON Feed --------------------------------------------------------------------------------


def _parse_json_feed(text: str, *, source: str, url: str) -> RawFeed:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(source, f"invalid JSON: {exc}", kind=ErrorKind.NOT_A_FEED) from exc
    except RecursionError as exc:  # the decoder recurses once per level of nesting
        raise DocumentError(
            source,
            "invalid JSON: nested too deeply for a feed (arrays and objects inside one another "
            "thousands of levels down)",
            kind=ErrorKind.NOT_A_FEED,
        ) from exc
    # Feeds in the wild write "version": "1.0" or leave it out; an "items" list is what counts.
    items = document.get("items") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise DocumentError(
            source,
            'JSON document is not a JSON Feed (it has no "items" list)',
            kind=ErrorKind.NOT_A_FEED,
        )
    base = url or next(
        (u for u in (document.get("feed_url"), document.get("home_page_url")) if is_http_url(u)), ""
    )
    entries: list[RawEntry] = []
    bad: list[str] = []
    for index, item in enumerate(items):
        try:
            entries.append(_json_entry(item, base))
        except (TypeError, ValueError, AttributeError) as exc:
            bad.append(f"item {index + 1}: {exc}")
    hubs = [h for h in _list(document.get("hubs")) if isinstance(h, dict)]
    websub = [{"rel": "hub", "href": h.get("url")} for h in hubs if _is_websub(h.get("type"))]
    return RawFeed(
        title=_text(document.get("title")),
        link=_text(document.get("home_page_url")),
        author=_json_author(document),
        ttl_s=None,
        entries=tuple(entries),
        bad_entries=tuple(bad),
        hub=_link_of(websub, "hub", url),
        self_url=_link_of([{"rel": "self", "href": document.get("feed_url")}], "self", url),
    )


def _is_websub(kind: object) -> bool:
    """A JSON Feed hub of type WebSub (the spec's example spells it so; PubSubHubbub is its old
    name, still served)."""
    return isinstance(kind, str) and kind.strip().lower() in ("websub", "pubsubhubbub")


def _json_entry(item: object, base: str) -> RawEntry:
    if not isinstance(item, dict):
        raise TypeError("an item must be a JSON object")
    if isinstance(item.get("content_html"), str) and item["content_html"].strip():
        body = item["content_html"]
    else:
        text = next(
            (item[k] for k in ("content_text", "summary") if isinstance(item.get(k), str)), ""
        )
        body = text_to_html(text)
    attachments = [a for a in _list(item.get("attachments")) if isinstance(a, dict)]
    images = [item.get("image"), item.get("banner_image")] + [
        a.get("url") for a in attachments if str(a.get("mime_type", "")).startswith("image/")
    ]
    tags = item.get("tags")
    # A comma-separated string is a common mistake for the array the spec asks for.
    tags = tags.split(",") if isinstance(tags, str) else _list(tags)
    item_id = item.get("id")
    published_text, updated_text = item.get("date_published"), item.get("date_modified")
    published, updated = read_date(published_text), read_date(updated_text)
    return RawEntry(
        guid=str(item_id) if isinstance(item_id, str | int) and str(item_id) else None,
        link=_text(item.get("url")) or _text(item.get("external_url")),
        title=_text(item.get("title")) or "",
        title_is_html=False,
        body_html=body,
        base=base,
        author=_json_author(item),
        published=published,
        updated=updated,
        tags=tuple(t for tag in tags if isinstance(tag, str) and (t := tag.strip())),
        images=tuple(u for u in images if isinstance(u, str)),
        media=tuple(u for a in attachments if isinstance(u := a.get("url"), str)),
        unreadable_dates=unreadable((published_text, published), (updated_text, updated)),
    )


def _json_author(item: dict[str, Any]) -> str | None:
    """Every name of ``authors`` (JSON Feed 1.1), else of ``author`` (1.0), joined as in XML."""
    authors = item.get("authors")
    candidates = authors if isinstance(authors, list) else [item.get("author")]
    return _joined_names(_text(a.get("name")) for a in candidates if isinstance(a, dict))


# --- front matter -----------------------------------------------------------------------------


def parse_front_matter(text: str, *, source: str) -> tuple[dict[str, Any], str]:
    """A front-matter post's metadata and body. Raises DocumentError when the YAML is invalid."""
    try:
        post = frontmatter.loads(text.lstrip("\ufeff \t\r\n"))
    except yaml.YAMLError as exc:
        raise DocumentError(
            source, f"invalid front matter: {exc}", kind=ErrorKind.BAD_FRONT_MATTER
        ) from exc
    if not isinstance(post.metadata, dict):
        raise DocumentError(
            source, "front matter is not a mapping of keys", kind=ErrorKind.BAD_FRONT_MATTER
        )
    return dict(post.metadata), str(post.content)


# --- helpers ----------------------------------------------------------------------------------


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _joined(base: str, url: str | None) -> str | None:
    """``url`` made absolute against ``base`` when it is relative and ``base`` is known."""
    if not url or not base or "://" in url[:12]:
        return url
    return urljoin(base, url)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
