"""Rendering a post as its front-matter file (DESIGN §1), and as a JSON object (DESIGN §8).

The front matter is written from a template, not by a YAML library: PyYAML cannot produce the
seed's one-space list indent, and a fixed key order is part of the schema. Values are emitted as
YAML plain scalars when that reads back as the same string, else single-quoted, so the file
parses back to exactly the stored values.
"""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import yaml

from ingest.types import Post
from ingest.units import iso_utc

_PLAIN_SAFE = re.compile(r"[^\s\-?:,\[\]{}#&*!|>'\"%@`][^:#]*")
_NOT_PLAIN_WORDS = re.compile(
    r"(?i:y|n|yes|no|true|false|on|off|null|~)|[-+]?(\.?\d[\d_.,:eE+-]*|\.inf|\.nan)"
)


def rfc2822(moment: datetime) -> str:
    """``Sat, 04 Jun 2022 07:00:48 GMT``: the schema's date form, always in UTC."""
    return email.utils.format_datetime(moment.astimezone(UTC), usegmt=True)


def single_quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@lru_cache(maxsize=4096)
def yaml_scalar(value: str) -> str:
    """``value`` as a YAML scalar that loads back as the same string: plain when it can be."""
    if (
        value
        and value == value.strip()
        and _PLAIN_SAFE.fullmatch(value)
        and not _NOT_PLAIN_WORDS.fullmatch(value)
    ):
        try:
            if yaml.safe_load(value) == value:
                return value
        except yaml.YAMLError:
            pass
    return single_quoted(value)


def front_matter(post: Post) -> str:
    """The front-matter block of ``post``, fences included, keys in the schema's order."""
    lines = ["---", f"title: {single_quoted(post.title)}"]
    if post.categories:
        lines.append("categories:")
        lines.extend(f" - {yaml_scalar(name)}" for name in post.categories)
    else:
        lines.append("categories: []")
    if post.headimg:
        lines.append(f"headimg: {single_quoted(post.headimg)}")
    lines.append(f"author: {yaml_scalar(post.author)}")
    lines.append(f"comments: {'true' if post.comments else 'false'}")
    lines.append(f"date: {rfc2822(post.published)}")
    if post.thumbnail:
        lines.append(f"thumbnail: {single_quoted(post.thumbnail)}")
    lines.append("---")
    return "\n".join(lines) + "\n"


def render_post(post: Post, *, body: str | None = None) -> str:
    """The whole post file: front matter, a blank line, the body (``body`` overrides it)."""
    return front_matter(post) + "\n" + (post.body if body is None else body) + "\n"


def post_json(
    post: Post, *, post_id: int | None, source: str, revision: int | None
) -> dict[str, Any]:
    """A post as the JSON object of DESIGN §8: the schema keys plus provenance (``post_id``
    and ``revision`` None, shown as null, for a post that is not stored: ``ingest parse``)."""
    return {
        "id": post_id,
        "title": post.title,
        "categories": list(post.categories),
        "headimg": post.headimg,
        "author": post.author,
        "comments": post.comments,
        "date": rfc2822(post.published),
        "thumbnail": post.thumbnail,
        "body": post.body,
        "link": post.link,
        "guid": post.guid,
        "source": source,
        "content_hash": post.content_hash,
        "published": iso_utc(post.published),
        "revision": revision,
    }
