"""OPML 2.0 subscription lists in and out, as pure functions (no store, no files).

Reading: every ``<outline>`` with an ``xmlUrl`` is a feed; the outlines around it are folders,
and their names, outermost first, become its categories; an http(s) ``htmlUrl`` is kept as the
site's home page. In a file of another program, the feed's ``title`` (else ``text``) becomes its
name, unless it only repeats the URL. A file feed-ingest wrote declares its namespace
(``NAMESPACE``) and carries each source's settings in attributes of it (``ingest:name``,
``ingest:interval``, ``ingest:comments``, ``ingest:max-body``): there ``title`` and ``text`` are
only what a reader shows (the name, else the feed's own title), so a feed's title is never
pinned as its name, and export then import gives back the same sources.

Only http(s) URLs are accepted, checked like the config's: an OPML file comes from anywhere,
and a local path or ``file://`` URL in it would read this machine's files into posts
(DESIGN §2). Local sources come from the config file or ``ingest feeds add --local``.

The parser is the standard library's expat, which fetches nothing; a DOCTYPE is refused
outright, since entity definitions are the one way an XML file can make a parser expand
gigabytes (billion laughs) and no OPML needs one. Without any entity, nesting multiplies too:
every feed inherits every folder around it, so 5,000 folders around 40,000 feeds (1.2 MB) are
200 million categories. Hence the caps: ``MAX_DEPTH`` outlines one in another (deeper refuses
the file at once), ``MAX_CATEGORIES`` folders per feed, ``MAX_CATEGORY_CHARS`` per folder name.
Any problem refuses the whole file, with the bad outlines listed by line (the first
``MAX_PROBLEMS`` of them), so nothing is imported half.

Writing: sources grouped into nested folders by their categories, in the order given, so
``write_opml`` -> ``read_opml`` -> ``write_opml`` gives the same document. Passwords and tokens
in feed URLs are written as ``***`` (``ingest.urls.redacted``) unless asked for: an OPML file
is made to be shared, and only a backup meant to be imported again needs them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TypeVar
from xml.parsers import expat

from ingest.digest.encoding import decode
from ingest.errors import OpmlError
from ingest.publish.render import rfc2822
from ingest.types import SourceSpec, StoredSource
from ingest.units import format_duration, parse_duration, parse_size
from ingest.urls import is_http_url, redacted, source_url, web_url

TITLE = "feed-ingest subscriptions"
NAMESPACE = "https://github.com/feed-ingest/feed-ingest/opml"
"""Declared as ``xmlns:ingest`` by ``write_opml``: the file holds our settings attributes."""
_PREFIX = "ingest:"
MAX_DEPTH = 16
"""Outlines one in another; real lists use two or three levels of folders."""
MAX_CATEGORIES = 8
"""Named folders around one feed, each one of its categories (and an export folder level)."""
MAX_CATEGORY_CHARS = 100
"""Characters in a folder name, a category of every feed inside it."""
T = TypeVar("T")
MAX_PROBLEMS = 10
"""Bad outlines listed in the error; the rest are counted."""


class _RefusedError(Exception):
    """Stops expat at a construct we do not accept."""


@dataclass
class _Reader:
    """expat's callbacks: the outline stack, the sources found and the problems met."""

    where: str
    parser: expat.XMLParserType
    folders: list[str | None] = field(default_factory=list)
    sources: list[SourceSpec] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    more_problems: int = 0
    root: str | None = None
    ours: bool = False
    in_body: bool = False
    saw_body: bool = False

    def doctype(self, *_: object) -> None:
        raise _RefusedError("has a DOCTYPE, which OPML never needs; remove it")

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if self.root is None:
            self.root = name
            if name != "opml":
                raise _RefusedError(f"is not OPML: its root element is <{name}>, not <opml>")
            self.ours = attrs.get("xmlns:ingest") == NAMESPACE
        if name == "body":
            self.in_body = self.saw_body = True
        if name != "outline" or not self.in_body:
            return
        if len(self.folders) == MAX_DEPTH:
            raise _RefusedError(
                f"line {self.parser.CurrentLineNumber}: outlines are nested more than "
                f"{MAX_DEPTH} deep; no subscription list needs that many folders, flatten them"
            )
        attributes = {key.lower(): value.strip() for key, value in attrs.items()}
        label = attributes.get("title") or attributes.get("text") or None
        self.folders.append(label)
        url = attributes.get("xmlurl")
        if url is not None:
            self._source(url, label, attributes)
        elif attributes.get("type", "").lower() in ("rss", "atom"):
            self._problem(f"feed outline {label!r} has no xmlUrl")
        elif label and len(label) > MAX_CATEGORY_CHARS:
            self._problem(
                f"folder {label[:40] + '...'!r} has a name of {len(label)} characters; "
                f"a category has at most {MAX_CATEGORY_CHARS}"
            )

    def end(self, name: str) -> None:
        if name == "outline" and self.in_body:
            self.folders.pop()
        elif name == "body":
            self.in_body = False

    def _source(self, url: str, label: str | None, attributes: dict[str, str]) -> None:
        if not url:
            self._problem(f"outline {label!r} has an empty xmlUrl")
            return
        if not is_http_url(url):
            self._problem(
                f"{url!r}: only http(s) feeds can be imported from OPML; add local files or "
                "folders to the config file or with `ingest feeds add --local`"
            )
            return
        try:
            canonical = source_url(url)
        except ValueError as exc:
            self._problem(str(exc))
            return
        categories = tuple(dict.fromkeys(f for f in self.folders[:-1] if f))
        if len(categories) > MAX_CATEGORIES:
            self._problem(
                f"feed outline {label!r} is in {len(categories)} named folders; at most "
                f"{MAX_CATEGORIES} become its categories, flatten them"
            )
            return
        if self.ours:
            try:
                settings = _settings(attributes)
            except ValueError as exc:
                self._problem(f"feed outline {label!r}: {exc}")
                return
        else:
            name = label if label and label not in (url, canonical) else None
            settings = SourceSpec(url="", name=name)
        site = attributes.get("htmlurl")
        self.sources.append(
            replace(
                settings,
                url=canonical,
                categories=categories,
                site_url=web_url(site) if site else None,
            )
        )

    def _problem(self, reason: str) -> None:
        if len(self.problems) == MAX_PROBLEMS:
            self.more_problems += 1
        else:
            self.problems.append(f"line {self.parser.CurrentLineNumber}: {reason}")


def _settings(attributes: dict[str, str]) -> SourceSpec:
    """A source's settings from the ``ingest:`` attributes ``write_opml`` wrote (no URL yet);
    ValueError naming the attribute that is wrong."""

    def value(key: str, parse: Callable[[str], T]) -> T | None:
        text = attributes.get(_PREFIX + key)
        if text is None:
            return None
        try:
            return parse(text)
        except ValueError as exc:
            raise ValueError(f"{_PREFIX}{key}: {exc}") from None

    interval = value("interval", parse_duration)
    return SourceSpec(
        url="",
        name=value("name", str) or None,
        interval_s=round(interval) if interval else None,
        comments=value("comments", _boolean),
        max_body=value("max-body", parse_size),
    )


def _boolean(text: str) -> bool:
    if text in ("true", "false"):
        return text == "true"
    raise ValueError(f"{text!r} is neither true nor false")


def read_opml(data: bytes, *, where: str) -> list[SourceSpec]:
    """The feeds of an OPML document, in document order, repeats included.

    ``where`` names the file in errors. Raises OpmlError when the document is not well-formed
    OPML or any feed outline is bad.
    """
    parser = expat.ParserCreate()
    reader = _Reader(where, parser)
    parser.StartDoctypeDeclHandler = reader.doctype
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    try:
        # Decoded by the rule feeds follow (BOM, UTF-8, declaration, fallback); expat then
        # reads UTF-8 whatever the declaration says.
        parser.Parse(decode(data), True)
    except _RefusedError as exc:
        raise OpmlError(where, str(exc)) from None
    except expat.ExpatError as exc:
        raise OpmlError(where, f"is not well-formed XML: {exc}") from None
    if not reader.saw_body:
        raise OpmlError(where, "has no <body>: not an OPML subscription list")
    if reader.problems:
        more = f"; and {reader.more_problems} more" if reader.more_problems else ""
        raise OpmlError(
            where, "nothing imported; fix these outlines: " + "; ".join(reader.problems) + more
        )
    return reader.sources


def _redacted(source: StoredSource) -> StoredSource:
    """``source`` with its URL, and so its label when that is the URL, redacted."""
    return replace(source, spec=replace(source.spec, url=redacted(source.spec.url)))


def _outline(source: StoredSource) -> dict[str, str]:
    """The attributes of a feed's outline: what readers show, and every setting of ours."""
    spec = source.spec
    attributes = {"type": "rss", "text": source.label, "title": source.label, "xmlUrl": spec.url}
    if spec.site_url:
        attributes["htmlUrl"] = spec.site_url
    if spec.name:
        attributes[_PREFIX + "name"] = spec.name
    if spec.interval_s:
        attributes[_PREFIX + "interval"] = format_duration(spec.interval_s)
    if spec.comments is not None:
        attributes[_PREFIX + "comments"] = "true" if spec.comments else "false"
    if spec.max_body is not None:
        attributes[_PREFIX + "max-body"] = str(spec.max_body)
    return attributes


def write_opml(sources: Sequence[StoredSource], *, now: datetime, credentials: bool = False) -> str:
    """An OPML 2.0 document of ``sources``, their categories as nested folders; the
    credentials in their URLs redacted unless ``credentials``."""
    opml = ET.Element("opml", {"version": "2.0", "xmlns:ingest": NAMESPACE})
    head = ET.SubElement(opml, "head")
    ET.SubElement(head, "title").text = TITLE
    ET.SubElement(head, "dateCreated").text = rfc2822(now)
    body = ET.SubElement(opml, "body")
    folders: dict[tuple[str, ...], ET.Element] = {(): body}
    for source in sources:
        path = source.spec.categories
        for depth in range(1, len(path) + 1):
            if path[:depth] not in folders:
                name = path[depth - 1]
                folders[path[:depth]] = ET.SubElement(
                    folders[path[: depth - 1]], "outline", text=name, title=name
                )
        shown = source if credentials else _redacted(source)
        ET.SubElement(folders[path], "outline", _outline(shown))
    ET.indent(opml, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(opml, encoding="unicode") + "\n"
