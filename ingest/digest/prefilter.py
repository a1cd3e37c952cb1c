"""Hiding the elements feedparser would misread, before it reads a document.

feedparser reads an item as a flat bag of element names: an ``<description>`` anywhere inside an
item is the item's description, the last one read wins, and ``<social><description>one-line
blurb</description></social>`` after the item's own long description becomes its body (its link,
title or author likewise). It also resolves an empty ``href=""`` against the base URL, so "no
link" turns into a link to the feed's home page. Neither can be undone afterwards: the item's
own values are gone from its result.

So the document is read once beforehand with expat (stdlib, C, no callbacks but for elements)
and the offending elements are renamed, which makes feedparser skip them and leaves every byte
offset of the rest where it was:

- inside an RSS ``<item>``, every plain element (no prefix, the item's own namespace) nested in
  one of the item's plain children, except in the children feedparser reads as a structure or as
  markup (``title``, ``description``, ``author``, ``source``, ``image`` ...): the item's own
  child wins over any deeper one;
- every ``<link>`` whose ``href`` is empty or blank.

A document expat cannot read (ill-formed XML, which feedparser reads with its loose parser) goes
through unchanged. The DOCTYPE is already cut out (``ingest.digest.parse``); the foreign-DTD
switch only makes undeclared HTML entities (``&nbsp;``) no error, and nothing is ever loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum, auto
from xml.parsers import expat

STRAY_PREFIX = b"stray-"
"""Put before a hidden element's local name: an element feedparser has no rule for."""

_READ_AS_A_WHOLE = frozenset(
    {"title", "description", "author", "contributor", "source", "image", "content", "summary",
     "body", "fullitem"}
)  # fmt: skip
"""An item's plain children whose inner elements feedparser reads as theirs: markup of the body,
an author's ``name``, a source's ``title``."""
_EMPTY_HREF = re.compile(rb"""\bhref\s*=\s*(["'])\s*\1""")
_START_TAG = re.compile(rb"""<[^\s/>]+(?:\s+[^\s=]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*(/?)>""")
"""A start tag expat has read (so well-formed); group 1 is "/" when it is an empty element."""


class _Role(Enum):
    ITEM = auto()
    OWN = auto()
    """A child of an item that is not a container of strays: left alone, and so is its inside."""
    CONTAINER = auto()
    """A plain child of an item with no meaning for its inner elements: those are strays."""
    STRAY = auto()
    """Renamed: an element nested where feedparser would take it for the item's own."""


@dataclass(frozen=True, slots=True)
class _Frame:
    role: _Role | None
    namespace: str
    item_namespace: str
    end_tag: bool = False
    """Whether a renamed element has an end tag to rename too (``<empty/>`` has none)."""


def without_strays(data: bytes) -> bytes:
    """``data`` (UTF-8 XML without a DOCTYPE) with the elements of the module docstring
    renamed; ``data`` itself when there are none or expat cannot read it."""
    if b"<item" not in data and not _EMPTY_HREF.search(data):
        return data
    insertions: list[int] = []
    stack: list[_Frame] = []
    parser = expat.ParserCreate()
    parser.UseForeignDTD(True)

    def rename(name: str, at: int) -> None:
        insertions.append(at + name.find(":") + 1)

    def start(name: str, attributes: dict[str, str]) -> None:
        parent = stack[-1] if stack else _Frame(None, "", "")
        namespace = attributes.get("xmlns", parent.namespace)
        plain = ":" not in name and namespace == parent.item_namespace
        if name.rpartition(":")[2] == "link" and not attributes.get("href", "x").strip():
            role: _Role | None = _Role.STRAY
        elif name == "item":
            stack.append(_Frame(_Role.ITEM, namespace, namespace))
            return
        elif parent.role is _Role.ITEM:
            role = _Role.CONTAINER if plain and name not in _READ_AS_A_WHOLE else _Role.OWN
        elif parent.role in (_Role.CONTAINER, _Role.STRAY):
            role = _Role.STRAY if plain else _Role.CONTAINER
        else:
            role = None
        end_tag = False
        if role is _Role.STRAY:
            at = parser.CurrentByteIndex
            rename(name, at + 1)
            tag = _START_TAG.match(data, at)
            end_tag = tag is not None and not tag.group(1)
        stack.append(_Frame(role, namespace, parent.item_namespace, end_tag))

    def end(name: str) -> None:
        # After an empty element expat points at the next token, which may be any end tag.
        if stack.pop().end_tag:
            rename(name, parser.CurrentByteIndex + 2)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except expat.ExpatError:
        return data
    if not insertions:
        return data
    pieces: list[bytes] = []
    previous = 0
    for at in sorted(insertions):
        pieces += (data[previous:at], STRAY_PREFIX)
        previous = at
    pieces.append(data[previous:])
    return b"".join(pieces)
