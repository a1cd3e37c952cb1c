"""``ingest export --format atom|json-feed``: merged feeds read back as a feed reader reads them.

Atom is parsed with feedparser (``bozo`` 0), JSON Feed checked against the JSON Feed 1.1 schema
in ``tests/data``; the store is filled by ``ingest run`` from local RSS files.
"""

from __future__ import annotations

import calendar
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import jsonschema
import pytest

from ingest.identity import content_hash
from ingest.publish.merged import MergedFeed
from ingest.publish.syndicate import atom, json_feed
from ingest.types import Post, SourceSpec, StoredPost, StoredSource
from tests.conftest import DATA, Cli, write_config

SCHEMA = json.loads((DATA / "jsonfeed-1.1.schema.json").read_text("utf-8"))


def item(guid: str, title: str, text: str, date: str, *tags: str) -> str:
    categories = "".join(f"<category>{tag}</category>" for tag in tags)
    return (
        f"<item><title>{title}</title><guid>{guid}</guid><link>https://site.example/{guid}</link>"
        f"<author>{guid}@site.example (Writer {guid})</author><pubDate>{date}</pubDate>"
        f"{categories}<description>&lt;p&gt;{text}&lt;/p&gt;</description></item>"
    )


def rss(path: Path, channel: str, *items: str) -> Path:
    path.write_text(
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{channel}'
        f"</title><link>https://site.example/</link>{''.join(items)}</channel></rss>",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def cli(tmp_path: Path, cli_for: Any) -> Cli:
    """A store with two sources: "Tech" (category Tech) and "News", which share one article,
    stored first by "Tech"."""
    shared = item("s", "Shared story", "told twice", "Mon, 03 Jun 2024 10:00:00 GMT", "Both")
    tech = rss(
        tmp_path / "tech.xml",
        "Tech Site",
        item("t1", "Rust &amp; &lt;Python&gt;", "fast", "Sat, 01 Jun 2024 08:00:00 GMT", "lang"),
        item("t2", "Newest tech", "newer", "Tue, 04 Jun 2024 09:30:00 GMT"),
        shared,
    )
    news = rss(
        tmp_path / "news.xml",
        "News Site",
        item("n1", "Old news", "old", "Wed, 01 May 2024 00:00:00 GMT"),
        shared,
    )
    config = write_config(
        tmp_path,
        [
            {"url": str(tech), "name": "Tech Blog", "categories": ["Tech"]},
            {"url": str(news), "name": "News"},
        ],
    )
    runner: Cli = cli_for(config)
    assert runner("run", "1").exit_code == 0  # "Tech" first: the shared story is its post
    assert runner("run").exit_code == 0
    return runner


def parsed(text: str) -> Any:
    feed = feedparser.parse(text)
    assert feed.bozo == 0, feed.get("bozo_exception")
    return feed


def test_an_atom_export_is_one_valid_deduplicated_feed_newest_first(
    cli: Cli, tmp_path: Path
) -> None:
    target = tmp_path / "public" / "all.atom"

    result = cli("export", "--format", "atom", "--url", "https://me.example/all.atom", str(target))

    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"4 posts in {target} (atom, written)\n"
    feed = parsed(target.read_text("utf-8"))
    assert feed.version == "atom10"
    assert feed.feed.title == "All posts"
    assert feed.feed.id.startswith("urn:uuid:")
    assert [link.href for link in feed.feed.links if link.rel == "self"] == [
        "https://me.example/all.atom"
    ]
    titles = [entry.title for entry in feed.entries]
    assert titles == ["Newest tech", "Shared story", "Rust & <Python>", "Old news"]
    ids = [entry.id for entry in feed.entries]
    assert len(set(ids)) == 4
    assert all(i.startswith("urn:uuid:") for i in ids)
    newest, shared, rust, _ = feed.entries
    assert newest.link == "https://site.example/t2"
    assert [link.rel for link in newest.links] == ["alternate"]
    assert newest.author == "Writer t2"
    assert calendar.timegm(newest.published_parsed) == calendar.timegm(
        (2024, 6, 4, 9, 30, 0, 0, 0, 0)
    )
    assert newest.updated_parsed is not None
    assert [tag.term for tag in rust.tags] == ["Tech", "Tech Blog", "lang"]
    assert rust.content[0].type == "text/html"
    assert rust.content[0].value == "<p>fast</p>"
    assert newest.source.title == "Tech Blog"
    assert shared.source.title == "Tech Blog"  # the source that stored it first
    assert feed.entries[3].source.title == "News"

    again = cli("export", "--format", "atom", "--url", "https://me.example/all.atom", str(target))

    assert again.stdout == f"4 posts in {target} (atom, unchanged)\n"
    assert [entry.id for entry in parsed(target.read_text("utf-8")).entries] == ids


def test_category_and_source_feeds_narrow_the_stream(cli: Cli) -> None:
    by_category = parsed(cli("export", "--format", "atom", "--category", "tech", "-").stdout)
    assert by_category.feed.title == "tech"
    assert [e.title for e in by_category.entries] == [
        "Newest tech",
        "Shared story",
        "Rust & <Python>",
    ]
    assert cli("entries", "list", "--category", "TECH", "--json").json()[0]["title"] == (
        "Newest tech"
    )

    by_source = parsed(cli("export", "--format", "atom", "--source", "2", "-").stdout)
    assert by_source.feed.title == "News"
    assert [e.title for e in by_source.entries] == ["Shared story", "Old news"]

    newest = parsed(
        cli("export", "--format", "atom", "--limit", "1", "--since", "2024-06-02", "-").stdout
    )
    assert [e.title for e in newest.entries] == ["Newest tech"]
    other = cli("export", "--format", "atom", "--category", "Tech", "--since", "2030-01-01", "-")
    assert other.exit_code == 0
    assert parsed(other.stdout).entries == []
    assert parsed(other.stdout).feed.id == by_category.feed.id  # one feed, whatever the case


def test_a_json_feed_export_follows_json_feed_1_1(cli: Cli) -> None:
    result = cli("export", "--format", "json-feed", "--title", "My reading", "-")

    assert result.exit_code == 0, result.stderr
    document = result.json()
    jsonschema.validate(document, SCHEMA)
    assert document["title"] == "My reading"
    assert "feed_url" not in document
    items = document["items"]
    assert [i["title"] for i in items] == [
        "Newest tech",
        "Shared story",
        "Rust & <Python>",
        "Old news",
    ]
    rust = items[2]
    assert rust["url"] == "https://site.example/t1"
    assert rust["content_html"] == "<p>fast</p>"
    assert rust["date_published"] == "2024-06-01T08:00:00Z"
    assert rust["date_modified"].endswith("Z")
    assert rust["authors"] == [{"name": "Writer t1"}]
    assert rust["tags"] == ["Tech", "Tech Blog", "lang"]
    assert rust["_ingest"]["source"]["title"] == "Tech Blog"
    assert rust["_ingest"]["revision"] == 1
    atom_ids = [e.id for e in parsed(cli("export", "--format", "atom", "-").stdout).entries]
    assert [i["id"] for i in items] == atom_ids


def test_an_edited_post_keeps_its_id_and_moves_the_feeds_updated(cli: Cli, tmp_path: Path) -> None:
    before = parsed(cli("export", "--format", "atom", "--source", "2", "-").stdout)
    rss(
        tmp_path / "news.xml",
        "News Site",
        item("n1", "Old news", "old, corrected", "Wed, 01 May 2024 00:00:00 GMT"),
    )
    assert cli("run", "--all").exit_code == 0

    after = parsed(cli("export", "--format", "atom", "--source", "2", "-").stdout)

    old_entry = before.entries[1]
    (edited,) = [e for e in after.entries if e.title == "Old news"]
    assert edited.id == old_entry.id
    assert edited.content[0].value == "<p>old, corrected</p>"
    # The text, not feedparser's struct_time: both runs may fall within one second.
    assert datetime.fromisoformat(edited.updated) > datetime.fromisoformat(old_entry.updated)
    assert datetime.fromisoformat(after.feed.updated) > datetime.fromisoformat(before.feed.updated)
    assert after.feed.id == before.feed.id


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--format", "atom", "--category", "nope", "f"], 1, "no post has the category 'nope'"),
        (["--format", "atom", "--source", "99", "f"], 1, "no source '99'"),
        (["--category", "Tech", "d"], 2, "--category works only with --format atom|json-feed"),
        (["--limit", "3", "d"], 2, "--limit works only with --format"),
        (["--format", "atom", "--layout", "flat", "f"], 2, "--layout is for a folder of files"),
        (["--format", "atom", "--url", "/all.atom", "f"], 2, "--url '/all.atom': give the http"),
    ],
)
def test_bad_feed_exports_say_why_in_one_line(
    cli: Cli, args: list[str], code: int, message: str
) -> None:
    result = cli("export", *args)

    assert result.exit_code == code
    assert result.stderr.startswith(f"error: {message}")
    assert result.stderr.count("\n") == 1


def test_the_folder_export_is_unchanged_beside_the_feeds(cli: Cli, tmp_path: Path) -> None:
    result = cli("export", str(tmp_path / "site"), "--layout", "flat")

    assert result.exit_code == 0
    assert len(list((tmp_path / "site").glob("*.md"))) == 4


def _stored(title: str, body: str) -> StoredPost:
    moment = datetime(2024, 6, 1, tzinfo=UTC)
    return StoredPost(
        id=1,
        post=Post(
            title=title,
            categories=("a\x0bb",),
            headimg=None,
            author="me\ufffe",
            comments=False,
            published=moment,
            thumbnail=None,
            body=body,
            guid=None,
            link=None,
            content_hash=content_hash(title, body),
        ),
        source="https://user:secret@feeds.example/rss",
        revision=1,
        source_id=7,
        first_seen=moment,
        updated=moment,
    )


def test_characters_xml_cannot_hold_are_dropped_and_credentials_never_published() -> None:
    source = StoredSource(
        id=7,
        spec=SourceSpec(url="https://user:secret@feeds.example/rss", name="Feeds"),
        origin="cli",
        enabled=True,
        title=None,
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    feed = MergedFeed(
        id="urn:uuid:x",
        title="t\x00",
        posts=(_stored("bell\x07 ]]> & <b>", "<p>form\x0cfeed</p>"),),
        sources={7: source},
    )

    document = atom(feed)

    parsed_feed = parsed(document.decode("utf-8"))
    (entry,) = parsed_feed.entries
    assert entry.title == "bell ]]> & <b>"
    assert entry.content[0].value == "<p>formfeed</p>"
    assert [t.term for t in entry.tags] == ["ab"]
    assert entry.author == "me"
    assert entry.source.title == "Feeds"
    assert b"secret" not in document
    assert b"feeds.example" not in document
    assert b"secret" not in json_feed(feed)
