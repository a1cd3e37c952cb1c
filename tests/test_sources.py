"""Managing sources in the store on both backends: add, find, import, remove and purge."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from ingest.cli.base import find_source
from ingest.sources import duplicate_of
from ingest.types import SourceSpec
from storage import PostFilter, Store
from storage.models import PostRow, SightingRow
from storage.sources import merged_spec
from tests.builders import NOW, a_post, store_posts

A = "https://a.example/feed"
B = "https://b.example/feed"


def test_merged_spec_keeps_what_is_not_given() -> None:
    old = SourceSpec(url=A, name="A", categories=("x",), interval_s=600)
    assert merged_spec(old, SourceSpec(url=A)) == old
    assert merged_spec(old, SourceSpec(url=A, categories=("y",))) == SourceSpec(
        url=A, name="A", categories=("y",), interval_s=600
    )


def test_adding_a_url_stored_in_another_spelling_returns_the_stored_source(store: Store) -> None:
    first, added = store.add_source(
        SourceSpec(url=A, name="A", interval_s=600), origin="cli", now=NOW, duplicate=duplicate_of
    )
    assert added
    assert first.origin == "cli"

    again, added = store.add_source(
        SourceSpec(url="https://A.example/feed"), origin="cli", now=NOW, duplicate=duplicate_of
    )
    assert (again, added) == (first, False)

    updated = store.update_source(first.id, SourceSpec(url=A, categories=("科技",)))
    assert updated is not None
    assert updated.spec == SourceSpec(url=A, name="A", categories=("科技",), interval_s=600)
    assert [s.id for s in store.list_sources()] == [first.id]


def test_a_source_is_found_by_id_url_or_path(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a relative path is taken from the current folder
    path = tmp_path / "feed.xml"
    remote, _ = store.add_source(SourceSpec(url=A), origin="cli", now=NOW, duplicate=duplicate_of)
    local, _ = store.add_source(
        SourceSpec(url=str(path)), origin="cli", now=NOW, duplicate=duplicate_of
    )

    assert find_source(store, str(remote.id)) == remote
    assert find_source(store, A) == remote
    assert find_source(store, "feed.xml") == local
    assert find_source(store, f"file://{path}") == local
    assert find_source(store, "999") is None
    assert find_source(store, "ftp://nope") is None


def test_import_adds_new_urls_in_order_and_skips_known_and_repeated_ones(store: Store) -> None:
    store.add_source(SourceSpec(url=A), origin="cli", now=NOW, duplicate=duplicate_of)
    specs = [SourceSpec(url=B, categories=("x",)), SourceSpec(url=A), SourceSpec(url=B)]

    result = store.import_sources(specs, origin="opml", now=NOW, duplicate=duplicate_of)

    assert [(s.spec, s.origin) for s in result.added] == [(specs[0], "opml")]
    assert result.skipped == [(A, "already stored as source 1"), (B, "repeated in the file")]


def test_removing_a_source_keeps_its_posts_without_purge(store: Store) -> None:
    state = store_posts(store, [a_post("1", "alpha"), a_post("2", "beta")], A)

    removal = store.remove_source(state.id, purge=False)

    assert removal is not None
    assert (removal.posts_deleted, removal.posts_kept) == (0, 2)
    assert store.list_sources() == []
    posts = store.list_posts()
    assert [p.source for p in posts] == [None, None]
    assert [p.post.title for p in store.search_posts("alpha")] == ["T alpha"]
    with store.database.read() as conn:
        assert conn.execute(select(SightingRow.__table__)).all() == []  # type: ignore[attr-defined]


def test_purge_deletes_only_the_posts_no_other_source_has(store: Store) -> None:
    shared = a_post("s", "shared story")
    gone = store_posts(store, [a_post("1", "alpha"), shared], A)
    other = store_posts(store, [shared, a_post("2", "beta")], B)

    removal = store.remove_source(gone.id, purge=True)

    assert removal is not None
    assert (removal.posts_deleted, removal.posts_kept) == (1, 1)
    assert sorted(p.post.title for p in store.list_posts()) == ["T beta", "T shared story"]
    assert store.search_posts("alpha") == []
    assert [p.post.title for p in store.search_posts("shared")] == ["T shared story"]
    assert len(store.list_posts(where=PostFilter(source_id=other.id))) == 2
    with store.database.read() as conn:
        table = PostRow.__table__  # type: ignore[attr-defined]
        assert set(conn.execute(select(table.c.source_id)).scalars()) == {None, other.id}


def test_removing_an_unknown_source_changes_nothing(store: Store) -> None:
    store_posts(store, [a_post("1", "alpha")], A)
    assert store.remove_source(999, purge=True) is None
    assert len(store.list_posts()) == 1
