"""Managing sources in the store on both backends: add, find, import, remove and purge."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from ingest.types import SourceSpec
from storage.engine import Store
from storage.entries import PostFilter, list_posts
from storage.models import PostRow, SightingRow
from storage.search import search_posts
from storage.sources import (
    AddAction,
    find_source,
    import_sources,
    list_sources,
    merged_spec,
    remove_source,
)
from storage.sources import add_source as add
from tests.builders import NOW, a_post, store_posts

A = "https://a.example/feed"
B = "https://b.example/feed"


def test_merged_spec_keeps_what_is_not_given() -> None:
    old = SourceSpec(url=A, name="A", categories=("x",), interval_s=600)
    assert merged_spec(old, SourceSpec(url=A)) == old
    assert merged_spec(old, SourceSpec(url=A, categories=("y",))) == SourceSpec(
        url=A, name="A", categories=("y",), interval_s=600
    )


def test_adding_a_known_url_updates_only_the_settings_given(store: Store) -> None:
    first, done = add(store, SourceSpec(url=A, name="A", interval_s=600), origin="cli", now=NOW)
    assert done is AddAction.ADDED
    assert first.origin == "cli"

    again, done = add(store, SourceSpec(url=A, categories=("科技",)), origin="cli", now=NOW)
    assert done is AddAction.UPDATED
    assert again.spec == SourceSpec(url=A, name="A", categories=("科技",), interval_s=600)
    assert add(store, SourceSpec(url=A), origin="cli", now=NOW) == (again, AddAction.UNCHANGED)
    assert [s.id for s in list_sources(store)] == [first.id]


def test_a_source_is_found_by_id_url_or_path(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    remote, _ = add(store, SourceSpec(url=A), origin="cli", now=NOW)
    local, _ = add(store, SourceSpec(url=str(path)), origin="cli", now=NOW)

    assert find_source(store, str(remote.id), base=tmp_path) == remote
    assert find_source(store, A, base=tmp_path) == remote
    assert find_source(store, "feed.xml", base=tmp_path) == local
    assert find_source(store, f"file://{path}", base=tmp_path) == local
    assert find_source(store, "999", base=tmp_path) is None
    assert find_source(store, "ftp://nope", base=tmp_path) is None


def test_import_adds_new_urls_in_order_and_skips_known_and_repeated_ones(store: Store) -> None:
    add(store, SourceSpec(url=A), origin="cli", now=NOW)
    specs = [SourceSpec(url=B, categories=("x",)), SourceSpec(url=A), SourceSpec(url=B)]

    result = import_sources(store, specs, origin="opml", now=NOW)

    assert [(s.spec, s.origin) for s in result.added] == [(specs[0], "opml")]
    assert result.skipped == [(A, "already stored as source 1"), (B, "repeated in the file")]


def test_removing_a_source_keeps_its_posts_without_purge(store: Store) -> None:
    state = store_posts(store, [a_post("1", "alpha"), a_post("2", "beta")], A)

    removal = remove_source(store, state.id, purge=False)

    assert removal is not None
    assert (removal.posts_deleted, removal.posts_kept) == (0, 2)
    assert list_sources(store) == []
    posts = list_posts(store)
    assert [p.source for p in posts] == [None, None]
    assert [p.post.title for p in search_posts(store, "alpha")] == ["T alpha"]
    with store.read() as conn:
        assert conn.execute(select(SightingRow.__table__)).all() == []  # type: ignore[attr-defined]


def test_purge_deletes_only_the_posts_no_other_source_has(store: Store) -> None:
    shared = a_post("s", "shared story")
    gone = store_posts(store, [a_post("1", "alpha"), shared], A)
    other = store_posts(store, [shared, a_post("2", "beta")], B)

    removal = remove_source(store, gone.id, purge=True)

    assert removal is not None
    assert (removal.posts_deleted, removal.posts_kept) == (1, 1)
    assert sorted(p.post.title for p in list_posts(store)) == ["T beta", "T shared story"]
    assert search_posts(store, "alpha") == []
    assert [p.post.title for p in search_posts(store, "shared")] == ["T shared story"]
    assert len(list_posts(store, where=PostFilter(source_id=other.id))) == 2
    with store.read() as conn:
        table = PostRow.__table__  # type: ignore[attr-defined]
        assert set(conn.execute(select(table.c.source_id)).scalars()) == {None, other.id}


def test_removing_an_unknown_source_changes_nothing(store: Store) -> None:
    store_posts(store, [a_post("1", "alpha")], A)
    assert remove_source(store, 999, purge=True) is None
    assert len(list_posts(store)) == 1
