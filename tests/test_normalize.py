"""Hostile field values from feeds: what is stored, printed by ``--json`` and written to files.

Every stored URL is an absolute http(s) URL as a browser would read it, and every stored text
field is free of control characters (DESIGN §3), so a post always renders to a front-matter file
that parses back to exactly its values.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

import frontmatter
import pytest

from ingest.digest.document import digest_feed
from ingest.publish.render import post_json, render_post
from ingest.types import Post, SourceSpec
from tests.conftest import DATA

HOSTILE = DATA / "hostile"
FEED_URL = "https://h.example/feed"
NOW = datetime(2025, 1, 1, tzinfo=UTC)
WEB_URL = re.compile(r"https?://[!-~]+")
"""Printable ASCII only: no whitespace, no control character, nothing a URL cannot hold."""


def _posts(name: str) -> dict[str, Post]:
    digest = digest_feed(
        (HOSTILE / name).read_bytes(),
        spec=SourceSpec(url=FEED_URL),
        comments=False,
        now=NOW,
        url=FEED_URL,
    )
    assert digest.skipped == ()
    return {post.guid or "": post for post in digest.posts}


def _json(post: Post) -> dict[str, Any]:
    return post_json(post, post_id=1, source=FEED_URL, revision=1)


def _controls(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) == "Cc" and c not in "\t\n"]


@pytest.mark.parametrize("name", ["fields.json", "fields.xml"])
def test_every_post_renders_to_a_file_that_parses_back_to_its_values(name: str) -> None:
    for post in _posts(name).values():
        rendered = render_post(post)
        parsed = frontmatter.loads(rendered)

        assert parsed.metadata.get("headimg") == post.headimg
        assert parsed.metadata.get("thumbnail") == post.thumbnail
        assert parsed.metadata["title"] == post.title
        assert parsed.content == post.body
        assert _controls(rendered) == []


@pytest.mark.parametrize("name", ["fields.json", "fields.xml"])
def test_every_stored_url_is_a_normalized_http_url_or_absent(name: str) -> None:
    for post in _posts(name).values():
        for key in ("headimg", "thumbnail", "link"):
            value = _json(post)[key]
            assert value is None or WEB_URL.fullmatch(value), (post.guid, key, value)
            assert value is None or "secret" not in value


def test_image_urls_are_read_as_browsers_read_them() -> None:
    posts = _posts("fields.xml")

    assert posts["nl"].headimg == "https://img.example/a.png---title:%20owned"
    assert posts["body"].headimg == "https://img.example/b.png---x:%20'y'"
    assert posts["quoted"].headimg == "https://img.example/c%20d.png?q=%22%3C%3E"
    assert posts["quoted"].thumbnail == posts["quoted"].headimg
    assert posts["js"].headimg is None
    assert "headimg" not in render_post(posts["js"])
    json_posts = _posts("fields.json")
    assert json_posts["data"].headimg == "https://img.example/a%20b%22%3C%3E'.png"
    assert json_posts["ftp"].headimg == "https://img.example/x---hacked:%20true.png"
    assert json_posts["js"].headimg is None


def test_only_http_links_are_stored() -> None:
    posts = _posts("fields.json")

    assert [_json(posts[key])["link"] for key in ("js", "data", "ftp")] == [None, None, None]
    assert posts["relative"].link == "https://h.example/posts/5"
    assert _posts("fields.xml")["js"].link is None
    assert _posts("fields.xml")["body"].link == "https://h.example/body"


def test_control_characters_are_stripped_from_every_text_field() -> None:
    post = _posts("fields.json")["ctl--1"]
    printed = _json(post)

    assert printed["title"] == "Red[31m alert 1m"
    assert printed["author"] == "Evil Author"
    assert printed["categories"] == ["Hostile[2J fields", "tag", "ok"]
    assert printed["guid"] == "ctl--1"
    assert printed["link"] == "https://h.example/1%00?x=%C2%9B"  # percent-encoded, as browsers do
    assert "line one\nline\ttwo" in printed["body"]  # the body keeps its tabs and newlines
    strings = [
        text
        for value in printed.values()
        for text in (value if isinstance(value, list) else [value])
        if isinstance(text, str)
    ]
    assert [text for text in strings if _controls(text)] == []
