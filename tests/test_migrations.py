"""A store made by the first released schema opens, upgrades and keeps every post intact."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, column, table, text

from ingest.errors import StoreError
from ingest.identity import content_hash
from ingest.types import Post
from storage import engine as engine_module
from storage import open_store
from storage.migrate import current_revision, upgrade
from storage.models import PostRow, SightingRow
from storage.revisions import head_revision
from tests.builders import NOW, a_post, ok, record_check
from tests.conftest import Cli

POSTS = PostRow.__table__  # type: ignore[attr-defined]
SIGHTINGS = SightingRow.__table__  # type: ignore[attr-defined]
OLD_POSTS = [
    a_post("zh", "学术界刮起离职潮，大批学者涌向工业界。", title="Nature 证实：离职潮"),
    a_post("en", "Scientists leave academia for industry."),
    a_post("html", "<b>bold</b> &amp; <i>plain</i>", title="Markup"),
]


def _post_columns(post: Post) -> dict[str, Any]:
    """A post's columns as the first released version wrote them."""
    return {
        "content_hash": post.content_hash,
        "title": post.title,
        "categories": list(post.categories),
        "headimg": post.headimg,
        "author": post.author,
        "comments": post.comments,
        "published_at": post.published,
        "thumbnail": post.thumbnail,
        "body": post.body,
        "link": post.link,
        "guid": post.guid,
        "updated_at": NOW,
    }


def insert_old_post(conn: Connection, row: dict[str, Any]) -> int:
    """Insert a post row holding only ``row``'s columns (today's model would add later ones);
    its id."""
    columns = [column(name, POSTS.c[name].type) for name in ("id", *row)]
    return int(
        conn.execute(table("posts", *columns).insert().returning(columns[0]), row).scalar_one()
    )


def make_old_store(url: str) -> None:
    """A store at revision 0001 holding ``OLD_POSTS``, written the way 0.1 wrote them."""
    store = open_store(url, migrate=False)
    upgrade(store.database.engine, "0001")
    with store.database.write() as conn:
        # Only the columns 0001 has: today's models know later ones.
        source_id = conn.execute(
            text(
                "INSERT INTO sources (url, categories, origin, enabled, created_at, error_count,"
                " redirect_count, previous_urls) VALUES ('https://x.example/feed', '[]', 'config',"
                " true, :now, 0, 0, '[]') RETURNING id"
            ),
            {"now": NOW.replace(tzinfo=None)},
        ).scalar_one()
        for post in OLD_POSTS:
            row = {
                **_post_columns(post),
                "source_id": source_id,
                "first_seen_at": NOW,
                "revision": 1,
            }
            post_id = insert_old_post(conn, row)
            conn.execute(
                SIGHTINGS.insert(),
                {
                    "post_id": post_id,
                    "source_id": source_id,
                    "entry_key": post.entry_key,
                    "guid": post.guid,
                    "link": post.link,
                    "content_hash": post.content_hash,
                    "first_seen_at": NOW,
                    "last_seen_at": NOW,
                },
            )
    store.close()


def test_an_old_store_upgrades_on_open_with_every_post_intact_and_searchable(
    store_url: str,
) -> None:
    make_old_store(store_url)
    old = open_store(store_url, migrate=False)
    assert current_revision(old.database.engine) == "0001"
    old.close()

    store = open_store(store_url)

    assert current_revision(store.database.engine) == head_revision()
    after = store.list_posts()
    # Revision 0006: the source's categories (none here) and the feed's name are the folders.
    assert {p.post for p in after} == {replace(p, source_categories=1) for p in OLD_POSTS}
    assert {(p.source, p.revision) for p in after} == {("https://x.example/feed", 1)}
    assert [p.post.title for p in store.search_posts("离职潮")] == ["Nature 证实：离职潮"]
    assert [p.post.guid for p in store.search_posts("学者")] == ["zh"]
    assert [p.post.guid for p in store.search_posts("academia")] == ["en"]
    assert [p.post.guid for p in store.search_posts("plain")] == ["html"]
    assert store.search_posts("amp") == []
    store.close()


def test_db_upgrade_reports_what_it_did(store_url: str) -> None:
    make_old_store(store_url)
    cli = Cli(store_url, None)

    first = cli("db", "upgrade", "--json").json()
    second = cli("db", "upgrade")

    assert first == {"from": "0001", "to": head_revision(), "changed": True}
    assert (
        second.stdout == f"the store is at the newest schema ({head_revision()}); nothing to do\n"
    )
    assert f"schema {head_revision()}" in cli("stats").stdout


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    open_store(url).close()
    store = open_store(url, migrate=False)
    with store.database.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    store.close()

    with pytest.raises(StoreError, match="revision 0099, newer than this feed-ingest knows"):
        open_store(url)
    result = Cli(url, None)("entries", "list")
    assert result.exit_code == 2
    assert "upgrade feed-ingest to use it" in result.stderr


def test_the_revision_list_matches_alembics() -> None:
    from alembic.script import ScriptDirectory

    from storage.migrate import alembic_config
    from storage.revisions import REVISIONS

    script = ScriptDirectory.from_config(alembic_config())
    chain = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert tuple(chain) == REVISIONS
    assert script.get_current_head() == REVISIONS[-1]


def test_a_store_another_process_creates_meanwhile_is_not_taken_for_a_stranger(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replicas start together on an empty database: one may see no revision yet, then the
    tables another one has just committed with theirs."""
    open_store(store_url).close()  # the other process's first migration, committed
    reads = iter([None])

    def revision_read_before_the_commit(engine: Any) -> str | None:
        return next(reads, current_revision(engine))

    monkeypatch.setattr(engine_module, "current_revision", revision_read_before_the_commit)
    open_store(store_url).close()


def _episode(audio: str) -> Post:
    """A podcast item as every version reads it: title "Episode", no body, guid "ep"."""
    media = (f"https://cdn.example/{audio}.mp3",)
    post = replace(a_post("ep", ""), title="Episode", body="", media=media)
    return replace(post, content_hash=content_hash(post.title, post.body, media))


def test_posts_hashed_before_media_counted_keep_their_hash_and_split_when_seen_again(
    store_url: str,
) -> None:
    """Before 0005 two feeds' episodes titled "Episode" with empty bodies were one post (the
    hash had no media). The store keeps the hash it has; each feed's next check then gives its
    episode its own post, the first by revising the old one in place."""
    old_hash = content_hash("Episode", "")
    store = open_store(store_url, migrate=False)
    upgrade(store.database.engine, "0004")
    with store.database.write() as conn:
        sources = [
            conn.execute(
                text(
                    "INSERT INTO sources (url, categories, origin, enabled, created_at,"
                    " error_count, redirect_count, previous_urls) VALUES (:url, '[]', 'config',"
                    " true, :now, 0, 0, '[]') RETURNING id"
                ),
                {"url": f"https://{name}.example/feed", "now": NOW.replace(tzinfo=None)},
            ).scalar_one()
            for name in ("a", "b")
        ]
        row = {**_post_columns(_episode("a")), "content_hash": old_hash}
        row |= {"source_id": sources[0], "first_seen_at": NOW, "revision": 1}
        post_id = insert_old_post(conn, row)
        for source_id in sources:
            conn.execute(
                SIGHTINGS.insert(),
                {
                    "post_id": post_id,
                    "source_id": source_id,
                    "entry_key": "ep",
                    "guid": "ep",
                    "link": None,
                    "content_hash": old_hash,
                    "first_seen_at": NOW,
                    "last_seen_at": NOW,
                },
            )
    store.close()

    store = open_store(store_url)
    [kept] = store.list_posts()
    assert (kept.post.content_hash, kept.post.media) == (old_hash, ())

    states = store.load_states(sources)
    for state, audio in zip(states, ("a", "b"), strict=True):
        record_check(store, state, [_episode(audio)], ok(state))

    posts = sorted(store.list_posts(), key=lambda p: p.id)
    assert [(p.id, p.post.media, p.revision) for p in posts] == [
        (post_id, ("https://cdn.example/a.mp3",), 2),
        (posts[1].id, ("https://cdn.example/b.mp3",), 1),
    ]
    assert {p.post.content_hash for p in posts} == {
        _episode("a").content_hash,
        _episode("b").content_hash,
    }
    store.close()


def test_posts_stored_before_0006_export_into_their_sources_folders_not_their_tags(
    store_url: str, tmp_path: Path
) -> None:
    """Before 0006 a post's tags could not be told from its source's categories; the upgrade
    takes the source's configured categories and the feed's name after them."""
    store = open_store(store_url, migrate=False)
    upgrade(store.database.engine, "0005")
    tagged = replace(a_post("t", "tagged"), categories=("Group", "Site", "tag 1", "tag 2"))
    with store.database.write() as conn:
        source_id = conn.execute(
            text(
                "INSERT INTO sources (url, categories, origin, enabled, created_at, error_count,"
                " redirect_count, previous_urls) VALUES ('https://x.example/feed', '[\"Group\"]',"
                " 'config', true, :now, 0, 0, '[]') RETURNING id"
            ),
            {"now": NOW.replace(tzinfo=None)},
        ).scalar_one()
        for post, source in ((tagged, source_id), (a_post("orphan", "no source"), None)):
            row = {**_post_columns(post), "source_id": source, "first_seen_at": NOW}
            insert_old_post(conn, {**row, "revision": 1})
    store.close()
    site = tmp_path / "site"

    assert Cli(store_url, None)("export", str(site)).exit_code == 0

    assert sorted(p.relative_to(site).as_posix() for p in site.rglob("*.md")) == [
        "Group/Site/T tagged.md",
        "T no source.md",
    ]
