"""A merged feed (``ingest.publish.merged``) written as Atom 1.0 (RFC 4287) or JSON Feed 1.1.

Atom is built as an element tree by the standard library's ``xml.etree`` (lxml's home is the
parser's fast path), which escapes every text and attribute; characters XML 1.0 forbids (most
C0 controls, lone surrogates, U+FFFE/U+FFFF) are removed first, since no escape can carry them.

Each entry carries what a reader of a merged feed needs to trace it:

- Atom: ``id``, ``title``, ``updated`` (the post's last change), ``published``, ``author``,
  a ``category`` per category, ``content type="html"``, ``link rel="alternate"`` to the
  original article, and ``source`` (RFC 4287 §4.2.11) naming the feed it came from: its id,
  title, its feed URL as ``link rel="self"`` and its site as ``link rel="alternate"``.
- JSON Feed: ``id``, ``url`` (the original article), ``title``, ``content_html``, ``image``,
  ``date_published``, ``date_modified``, ``authors``, ``tags``, and an ``_ingest`` extension
  object with the source (``id``, ``title``, ``feed_url``, ``home_page_url``), the content hash
  and the revision.

Every link is absolute (stored URLs are), so there is no ``xml:base``. A source's feed URL is
published only when it is an http(s) URL without credentials; a local path never is.
The output is a function of the feed alone: the same posts give the same bytes (ETags rely on it).
"""

from __future__ import annotations

import json
import re
from typing import Any
from xml.etree import ElementTree as ET

from ingest.publish.formats import FeedFormat
from ingest.publish.merged import MergedFeed, entry_id, provenance_id, source_title
from ingest.types import StoredPost, StoredSource
from ingest.units import iso_utc
from ingest.urls import is_http_url, redacted

ATOM_NS = "http://www.w3.org/2005/Atom"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
GENERATOR = "feed-ingest"
EMPTY_UPDATED = "1970-01-01T00:00:00Z"
"""``updated`` of a feed without posts: Atom requires one, and it must not change by itself."""
ET.register_namespace("", ATOM_NS)  # Atom as the default namespace: <feed xmlns="...Atom">
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render_feed(feed: MergedFeed, form: FeedFormat, *, self_url: str | None = None) -> bytes:
    """``feed`` as a document of ``form``, UTF-8; ``self_url`` is where it is published (its
    ``rel="self"`` link, JSON Feed's ``feed_url``), None when unknown."""
    if form is FeedFormat.ATOM:
        return atom(feed, self_url=self_url)
    return json_feed(feed, self_url=self_url)


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold, escaped or not."""
    return _NOT_XML.sub("", text)


def atom(feed: MergedFeed, *, self_url: str | None = None) -> bytes:
    """``feed`` as an Atom 1.0 document."""
    root = ET.Element(_atom("feed"))
    _add(root, "id", feed.id)
    _add(root, "title", feed.title)
    _add(root, "updated", iso_utc(feed.updated) if feed.updated else EMPTY_UPDATED)
    if self_url:
        _add(root, "link", rel="self", href=self_url, type="application/atom+xml")
    _add(root, "generator", GENERATOR)
    for stored in feed.posts:
        _atom_entry(root, stored, feed.source_of(stored))
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def _atom_entry(root: ET.Element, stored: StoredPost, source: StoredSource | None) -> None:
    post = stored.post
    entry = _add(root, "entry")
    _add(entry, "id", entry_id(stored))
    _add(entry, "title", post.title, type="text")
    _add(entry, "updated", iso_utc(stored.updated))
    _add(entry, "published", iso_utc(post.published))
    _add(_add(entry, "author"), "name", post.author)
    if post.link:
        _add(entry, "link", rel="alternate", type="text/html", href=post.link)
    for category in post.categories:
        _add(entry, "category", term=category)
    _add(entry, "content", post.body, type="html")
    if source is not None:
        origin = _add(entry, "source")
        _add(origin, "id", provenance_id(source))
        _add(origin, "title", source_title(source))
        feed_url = public_feed_url(source)
        if feed_url:
            _add(origin, "link", rel="self", href=feed_url)
        if source.spec.site_url and is_http_url(source.spec.site_url):
            _add(origin, "link", rel="alternate", type="text/html", href=source.spec.site_url)


def _atom(tag: str) -> str:
    return f"{{{ATOM_NS}}}{tag}"


def _add(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(
        parent, _atom(tag), {name: xml_text(value) for name, value in attributes.items()}
    )
    if text is not None:
        element.text = xml_text(text)
    return element


def json_feed(feed: MergedFeed, *, self_url: str | None = None) -> bytes:
    """``feed`` as a JSON Feed 1.1 document."""
    document: dict[str, Any] = {"version": JSON_FEED_VERSION, "title": feed.title}
    if self_url:
        document["feed_url"] = self_url
    document["items"] = [_json_item(stored, feed.source_of(stored)) for stored in feed.posts]
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")


def _json_item(stored: StoredPost, source: StoredSource | None) -> dict[str, Any]:
    post = stored.post
    item: dict[str, Any] = {"id": entry_id(stored)}
    if post.link:
        item["url"] = post.link
    item |= {
        "title": post.title,
        "content_html": post.body,
        "date_published": iso_utc(post.published),
        "date_modified": iso_utc(stored.updated),
        "authors": [{"name": post.author}],
        "tags": list(post.categories),
    }
    if post.headimg:
        item["image"] = post.headimg
    provenance: dict[str, Any] = {"content_hash": post.content_hash, "revision": stored.revision}
    if source is not None:
        origin = {
            "id": provenance_id(source),
            "title": source_title(source),
            "feed_url": public_feed_url(source),
            "home_page_url": source.spec.site_url if is_http_url(source.spec.site_url) else None,
        }
        provenance["source"] = {key: value for key, value in origin.items() if value}
    item["_ingest"] = provenance
    return item


def public_feed_url(source: StoredSource) -> str | None:
    """``source``'s URL when it may be published: http(s), with no credentials in it."""
    url = source.spec.url
    return url if is_http_url(url) and redacted(url) == url else None
