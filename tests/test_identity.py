"""Deduplication decisions as a table: no database, no clock."""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from ingest.identity import collapse_whitespace, content_hash, decide, keyed
from ingest.types import Change, EntryIntent, KnownSighting, Post


def post(key: str, text: str) -> Post:
    return Post(
        title=f"title {text}",
        categories=("c",),
        headimg=None,
        author="a",
        comments=False,
        published=datetime(2024, 1, 1, tzinfo=UTC),
        thumbnail=None,
        body=f"<p>{text}</p>",
        guid=key,
        link=None,
        content_hash=content_hash(f"title {text}", f"<p>{text}</p>"),
    )


A1, A2, B1, B2 = post("a", "one"), post("a", "two"), post("b", "one"), post("b", "three")


def changes(intents: list[EntryIntent]) -> list[tuple[str, Change, int | None]]:
    return [(i.post.entry_key, i.change, i.revise) for i in intents]


@pytest.mark.parametrize(
    ("posts", "sightings", "stored", "expected"),
    [
        pytest.param([A1], {}, set(), [("a", Change.NEW, None)], id="first sighting"),
        pytest.param(
            [A1],
            {"a": KnownSighting(7, A1.content_hash, A1.content_hash)},
            {A1.content_hash},
            [("a", Change.UNCHANGED, None)],
            id="seen again unchanged",
        ),
        pytest.param(
            [A2],
            {"a": KnownSighting(7, A1.content_hash, A1.content_hash)},
            set(),
            [("a", Change.UPDATED, 7)],
            id="edited at its source",
        ),
        pytest.param(
            [B1],
            {},
            {A1.content_hash},
            [("b", Change.DUPLICATE, None)],
            id="same content elsewhere",
        ),
        pytest.param(
            [A2],
            {"a": KnownSighting(7, A1.content_hash, A1.content_hash)},
            {A2.content_hash},
            [("a", Change.DUPLICATE, None)],
            id="edited into content already stored",
        ),
        pytest.param(
            [A1, B1],
            {},
            set(),
            [("a", Change.NEW, None), ("b", Change.DUPLICATE, None)],
            id="same content twice in one document",
        ),
        pytest.param([A1, A2], {}, set(), [("a", Change.NEW, None)], id="repeated key: first wins"),
        pytest.param(
            [A1],
            {"a": KnownSighting(7, A1.content_hash, B2.content_hash)},
            set(),
            [("a", Change.UNCHANGED, None)],
            id="post revised by another source: left alone",
        ),
        pytest.param(
            [A2],
            {"a": KnownSighting(7, A1.content_hash, B2.content_hash)},
            set(),
            [("a", Change.NEW, None)],
            id="edited after another source revised the post: a post of its own",
        ),
        pytest.param(
            [A2, B2],
            {
                "a": KnownSighting(7, A1.content_hash, A1.content_hash),
                "b": KnownSighting(7, A1.content_hash, A1.content_hash),
            },
            set(),
            [("a", Change.UPDATED, 7), ("b", Change.NEW, None)],
            id="two entries of one post both edited: the second a post of its own",
        ),
    ],
)
def test_decide(
    posts: list[Post],
    sightings: dict[str, KnownSighting],
    stored: set[str],
    expected: list[tuple[str, Change, int | None]],
) -> None:
    assert changes(decide(posts, sightings, stored)) == expected


def test_the_key_is_guid_then_link_then_content_hash() -> None:
    assert A1.entry_key == "a"
    assert replace(A1, guid=None, link="https://x/1").entry_key == "https://x/1"
    assert replace(A1, guid=None, link=None).entry_key == A1.content_hash


def test_content_hash_ignores_whitespace_runs_but_not_words() -> None:
    assert content_hash("T", "<p>a  b\n c</p>") == content_hash(" T ", "<p>a b c</p>")
    assert content_hash("T", "<p>a b</p>") != content_hash("T", "<p>a c</p>")
    assert content_hash("T1", "x") != content_hash("T2", "x")


def test_collapsing_whitespace_treats_every_unicode_space_as_the_regex_does() -> None:
    spaces = re.compile(r"\s+")
    characters = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    sample = "a" + "b".join(c for c in characters if c.isspace() or c in "xyz") + "c"
    assert collapse_whitespace(sample) == spaces.sub(" ", sample).strip()
    assert [c for c in characters if bool(spaces.fullmatch(c)) != c.isspace()] == []


def test_media_urls_are_part_of_the_content_and_no_media_is_the_old_hash() -> None:
    plain = hashlib.sha256(b"Episode\n").hexdigest()
    one = content_hash("Episode", "", ["https://cdn.example/1.mp3"])
    two = content_hash("Episode", "", ["https://cdn.example/2.mp3"])

    assert content_hash("Episode", "") == content_hash("Episode", "", []) == plain
    assert len({plain, one, two}) == 3
    assert content_hash("Episode", "", [" https://cdn.example/1.mp3\n"]) == one


def entry(guid: str | None, link: str | None, text: str) -> Post:
    return replace(post("", text), guid=guid, link=link)


@pytest.mark.parametrize(
    ("posts", "keys"),
    [
        pytest.param(
            [entry("g", "https://x/1", "one"), entry("h", "https://x/1", "two")],
            ["g", "h"],
            id="unique guids are the keys",
        ),
        pytest.param(
            [entry("g", "https://x/1", "one"), entry("g", "https://x/2", "two")],
            ["g https://x/1", "g https://x/2"],
            id="shared guid: guid and link, for every entry sharing it",
        ),
        pytest.param(
            [entry("g", "https://x/1", "one"), entry("g", "https://x/1", "two")],
            [post("", "one").content_hash, post("", "two").content_hash],
            id="shared guid and link: content hash",
        ),
        pytest.param(
            [entry("g", None, "one"), entry("g", None, "two")],
            [post("", "one").content_hash, post("", "two").content_hash],
            id="shared guid without links: content hash",
        ),
        pytest.param(
            [entry(None, "https://x/1", "one"), entry(None, "https://x/1", "two")],
            [post("", "one").content_hash, post("", "two").content_hash],
            id="shared link without guids: content hash",
        ),
        pytest.param(
            [entry("g", "https://x/1", "one"), entry("g", "https://x/1", "one")],
            ["g", "g"],
            id="a true repeat keeps its key",
        ),
    ],
)
def test_keys_tell_apart_entries_that_share_a_guid(posts: list[Post], keys: list[str]) -> None:
    assert [p.entry_key for p in keyed(posts)] == keys


def test_entries_sharing_a_guid_are_all_stored_and_a_true_repeat_once() -> None:
    first, second = entry("g", "https://x/1", "one"), entry("g", "https://x/2", "two")

    intents = decide(keyed([first, second, second]), {}, set())

    assert [(i.change, i.post.title) for i in intents] == [
        (Change.NEW, "title one"),
        (Change.NEW, "title two"),
    ]
