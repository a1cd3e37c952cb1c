"""Full-text search on both backends: CJK and English, short queries, ranking, upkeep."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from storage import Store, open_store, search
from tests.builders import NOW, a_post, a_source, ok, record_check, store_posts
from tests.conftest import CNBETA, SEED, Cli, write_config

SEED_TITLE = "Nature 证实：学术界刮起离职潮 大批学者涌向工业界"


def titles(store: Store, query: str, limit: int = 20) -> list[str]:
    return [found.post.title for found in store.search_posts(query, limit=limit)]


@pytest.fixture
def seeded(store_url: str, tmp_path: Path) -> Iterator[Store]:
    """A store holding the seed post, ingested the way a user would."""
    assert Cli(store_url, write_config(tmp_path, [{"url": str(SEED)}]))("run").exit_code == 0
    store = open_store(store_url)
    store_posts(
        store,
        [
            a_post("en", "Scientists leave academia for industry, a study in Nature finds."),
            a_post("other", "今天的天气很好，我们去公园散步。"),
        ],
    )
    yield store
    store.close()


@pytest.mark.parametrize(
    "query", ["离职潮", "学术界", "学术", "潮", "大批学者", "Nature 离职潮", "工业界 nature"]
)
def test_chinese_queries_find_the_seed(seeded: Store, query: str) -> None:
    assert titles(seeded, query) == [SEED_TITLE]


def test_english_queries_match_words_in_title_or_body(seeded: Store) -> None:
    assert titles(seeded, "academia") == [
        "T Scientists leave academia for industry, a study in Nature finds."
    ]
    assert set(titles(seeded, "nature")) == {
        SEED_TITLE,
        "T Scientists leave academia for industry, a study in Nature finds.",
    }
    assert titles(seeded, "INDUSTRY study") == titles(seeded, "academia")


def test_no_match_and_empty_queries_return_nothing(seeded: Store) -> None:
    assert titles(seeded, "quokkanomics") == []
    assert titles(seeded, "离职潮 quokkanomics") == []
    assert titles(seeded, "   ") == []
    assert titles(seeded, '"') == []


def test_query_syntax_is_never_interpreted(seeded: Store) -> None:
    for query in [
        "NEAR(a b)",
        "title:x",
        "a OR b",
        "*",
        "-nature",
        "学 AND",
        "'; DROP TABLE posts",
    ]:
        titles(seeded, query)  # no error: every term is a literal string
    assert titles(seeded, "(离职潮)") == [SEED_TITLE]  # punctuation separates, like spaces


def test_ranking_prefers_title_hits_then_frequent_mentions(store: Store) -> None:
    filler = " ".join(["padding"] * 40)
    store_posts(
        store,
        [
            a_post("once", f"{filler} satellite {filler}", title="Once"),
            a_post("often", f"satellite {filler} satellite {filler} satellite", title="Often"),
            a_post("title", f"{filler} nothing here {filler}", title="Satellite launch"),
            a_post("none", filler, title="None"),
        ],
    )
    assert titles(store, "satellite") == ["Satellite launch", "Often", "Once"]


def test_ties_go_to_the_newest(store: Store) -> None:
    posts = [
        a_post(str(day), f"same words {day}", title=f"Day {day}", published=NOW.replace(day=day))
        for day in (3, 1, 2)
    ]
    store_posts(store, posts)
    assert titles(store, "same words") == ["Day 3", "Day 2", "Day 1"]
    assert titles(store, "same", limit=2) == ["Day 3", "Day 2"]


def test_a_revised_post_is_found_by_its_new_text_only(store: Store) -> None:
    state = a_source(store)
    record_check(store, state, [a_post("k", "old wording")], ok(state), now=NOW)
    record_check(store, state, [a_post("k", "new wording")], ok(state), now=NOW)
    assert titles(store, "old") == []
    assert titles(store, "new") == ["T new wording"]


def test_html_is_not_searched(store: Store) -> None:
    post = a_post("h", "text")
    body = '<p>visible</p><p><img src="https://img.example/zebra.png" alt="x"></p>'
    store_posts(store, [replace(post, body=body)])
    assert titles(store, "visible") == ["T text"]
    assert titles(store, "zebra") == []
    assert titles(store, "img") == []


def test_storing_posts_only_queues_them_and_a_search_indexes_the_backlog(store: Store) -> None:
    store_posts(store, [a_post(str(i), f"backlog entry number {i}") for i in range(2500)])
    assert store.backlog_size() == 2500

    first, last = titles(store, "entry number 0"), titles(store, "entry number 2499")

    assert (first, last) == (["T backlog entry number 0"], ["T backlog entry number 2499"])
    assert store.backlog_size() == 0


def test_index_backlog_works_in_bounded_batches(store: Store) -> None:
    store_posts(store, [a_post(str(i), f"batch {i}") for i in range(30)])
    assert search.index_backlog(store.database, batch=7, most=10) == 10
    assert store.backlog_size() == 20
    assert search.index_backlog(store.database, batch=7) == 20
    assert store.backlog_size() == 0
    assert store.index_backlog() == 0


def test_a_run_leaves_every_post_it_stored_searchable(store_url: str, tmp_path: Path) -> None:
    cli = Cli(store_url, write_config(tmp_path, [{"url": str(SEED)}, {"url": str(CNBETA)}]))
    assert cli("run").exit_code == 0

    store = open_store(store_url)
    try:
        assert store.backlog_size() == 0  # the first search has nothing left to index
    finally:
        store.close()
    assert cli("db", "index", "--json").json() == {"indexed": 0}


def test_db_index_brings_the_index_up_to_date(store: Store, store_url: str) -> None:
    store_posts(store, [a_post(str(i), f"post number {i}") for i in range(3)])
    cli = Cli(store_url, None)

    first = cli("db", "index", "--json").json()
    second = cli("db", "index", "--json").json()

    assert (first, second) == ({"indexed": 3}, {"indexed": 0})


def test_replicas_indexing_at_once_share_the_backlog_without_conflict(store_url: str) -> None:
    setup = open_store(store_url)
    store_posts(setup, [a_post(str(i), f"story number {i}") for i in range(400)])
    replicas = [open_store(store_url) for _ in range(4)]
    start = threading.Barrier(len(replicas))
    indexed: list[int] = []
    errors: list[BaseException] = []

    def replica(store: Store) -> None:
        start.wait()
        try:
            indexed.append(search.index_backlog(store.database, batch=10))
        except Exception as exc:  # noqa: BLE001  (collected for the assertion)
            errors.append(exc)

    threads = [threading.Thread(target=replica, args=(store,)) for store in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(indexed) == 400
    assert setup.backlog_size() == 0
    assert titles(setup, "number 123") == ["T story number 123"]
    for store in [setup, *replicas]:
        store.close()


def test_a_post_revised_while_it_is_being_indexed_is_indexed_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = a_source(store)
    record_check(store, state, [a_post("k", "old wording")], ok(state), now=NOW)
    reading = threading.Event()
    real = search._index_rows

    def slow_index(conn: Any, rows: Any) -> None:
        reading.set()  # the old text is read; the revision lands while this batch is open
        time.sleep(0.5)
        real(conn, rows)

    monkeypatch.setattr(search, "_index_rows", slow_index)
    indexer = threading.Thread(target=store.index_backlog)
    indexer.start()
    assert reading.wait(10)
    record_check(store, state, [a_post("k", "new wording")], ok(state), now=NOW)
    indexer.join()
    monkeypatch.undo()

    assert titles(store, "new wording") == ["T new wording"]
    assert titles(store, "old wording") == []
