"""An author text split into name and e-mail address, for both parsers.

feedparser's ``_sync_author_detail`` splits ``editor@example.com (Jane Doe)`` into a name and an
address with a pattern that has two faults: a domain's last label may have only two to four
letters, so ``jane@example.technology (Jane Doe)`` becomes the name ``nology (Jane Doe``; and its
overlapping groups backtrack quadratically, so one 32 KB ``<author>`` holds a core for seconds.
``sync_person`` is that method with the pattern replaced (labels of any length, possessive
quantifiers that never backtrack, an address starting only where a run of address characters
starts); the fast path calls it, and ``patch_feedparser`` makes feedparser call it too, so both
parsers still read every author alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, MutableMapping
from typing import Any

import feedparser.mixin

EMAIL = re.compile(
    r"(?<![A-Za-z0-9_.+\-])[A-Za-z0-9_.+\-]++@"
    r"(?:\[[0-9]{1,3}(?:\.[0-9]{1,3}){3}\]|[A-Za-z0-9\-]++(?:\.[A-Za-z0-9\-]++)++)"
    r"(?:\?subject=\S++)?"
)
"""An e-mail address in an author text, as feedparser finds them, with no limit on a label's
length; linear in the text's length."""


def sync_person(
    context: MutableMapping[str, Any],
    key: str,
    new_detail: Callable[[], MutableMapping[str, Any]],
) -> None:
    """feedparser's ``_sync_author_detail(key)`` on ``context`` (an entry or the feed): ``key``
    rebuilt from the last of its people, or, when there is none, split into ``key_detail``'s
    name and e-mail address (``new_detail`` makes that dict)."""
    people = context.get(f"{key}s")
    detail = people[-1] if people else new_detail()
    if detail:
        name, email = detail.get("name"), detail.get("email")
        if name and email:
            context[key] = f"{name} ({email})"
        elif name:
            context[key] = name
        elif email:
            context[key] = email
        return
    author, email = context.get(key), None
    if not author:
        return
    match = EMAIL.search(author)
    if match:
        email = match.group(0)
        author = author.replace(email, "").replace("()", "").replace("<>", "")
        author = author.replace("&lt;&gt;", "").strip()
        if author and author[0] == "(":
            author = author[1:]
        if author and author[-1] == ")":
            author = author[:-1]
        author = author.strip()
    if author or email:
        context.setdefault(f"{key}_detail", detail)
    if author:
        detail["name"] = author
    if email:
        detail["email"] = email


def _sync_author_detail(parser: Any, key: str = "author") -> None:
    sync_person(parser._get_context(), key, feedparser.FeedParserDict)


def patch_feedparser() -> None:
    """Make feedparser split authors with ``sync_person``; idempotent."""
    feedparser.mixin._FeedParserMixin._sync_author_detail = _sync_author_detail
