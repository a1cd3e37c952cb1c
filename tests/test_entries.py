"""Listing posts with filters on both backends, and the CLI's date and feed options."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ingest.units import parse_moment, parse_until
from storage import PostFilter, Store
from tests.builders import NOW, a_post, store_posts
from tests.conftest import CNBETA, write_config

DAY = timedelta(days=1)


@pytest.fixture
def two_feeds(store: Store) -> tuple[int, int]:
    a = store_posts(
        store,
        [
            a_post("a1", "one", title="A old", categories=("科技",), published=NOW - 3 * DAY),
            a_post("a2", "two", title="A new", categories=("新闻", "科技"), published=NOW),
        ],
        "https://a.example/feed",
    )
    b = store_posts(
        store,
        [
            a_post("b1", "three", title="B mid", categories=("新闻",), published=NOW - DAY),
            a_post("a2", "two", title="A new", categories=("新闻", "科技"), published=NOW),
        ],
        "https://b.example/feed",
    )
    return a.id, b.id


def titles(store: Store, **where: Any) -> list[str]:
    return [p.post.title for p in store.list_posts(where=PostFilter(**where))]


def test_filters_alone_and_combined(store: Store, two_feeds: tuple[int, int]) -> None:
    a, b = two_feeds
    assert titles(store) == ["A new", "B mid", "A old"]
    assert titles(store, source_id=a) == ["A new", "A old"]
    assert titles(store, source_id=b) == ["A new", "B mid"]  # a duplicate counts for b too
    assert titles(store, category="科技") == ["A new", "A old"]
    assert titles(store, category="科") == []
    assert titles(store, since=NOW - DAY) == ["A new", "B mid"]
    assert titles(store, until=NOW - DAY) == ["B mid", "A old"]
    assert titles(store, source_id=b, category="新闻", until=NOW - DAY) == ["B mid"]
    assert titles(store, source_id=a, category="新闻", since=NOW - 2 * DAY) == ["A new"]
    assert store.list_posts(limit=1, where=PostFilter(category="新闻"))[0].post.title == "A new"


def test_a_category_matches_in_any_case(store: Store) -> None:
    source = store_posts(
        store,
        [
            a_post("t", "one", title="Tech", categories=("Tech",)),
            a_post("r", "two", title="Russian", categories=("Новости", "Straße")),
        ],
    )
    assert titles(store, category="tech") == ["Tech"]
    assert titles(store, category="TECH") == ["Tech"]
    assert titles(store, category="новости") == ["Russian"]
    assert titles(store, category="Straße") == ["Russian"]
    assert titles(store, category="Tec") == []
    stored = store.list_posts(where=PostFilter(category="tech"))[0]
    assert (stored.source_id, stored.first_seen, stored.updated) == (source.id, NOW, NOW)


def test_dates_and_datetimes_are_read_as_utc() -> None:
    assert parse_moment("2024-06-01") == NOW.replace(hour=0)
    assert parse_until("2024-06-01") == NOW.replace(
        hour=23, minute=59, second=59, microsecond=999999
    )
    assert parse_moment("2024-06-01T12:00") == NOW
    assert parse_moment("2024-06-01 20:00+08:00") == NOW
    assert parse_moment("2024-06-01T12:00:00Z") == NOW
    with pytest.raises(ValueError, match=r"'June 1st' is not a date; use e\.g\. 2024-06-01"):
        parse_moment("June 1st")


def test_the_cli_filters_by_feed_and_day(tmp_path: Path, cli_for: Any) -> None:
    cli = cli_for(write_config(tmp_path, [{"url": str(CNBETA)}]))
    cli("run")

    def listed(*options: str) -> list[str]:
        return [p["title"] for p in cli("entries", "list", "--json", *options).json()]

    seed = ["Nature 证实：学术界刮起离职潮 大批学者涌向工业界"]
    assert listed("--since", "2022-06-04", "--until", "2022-06-04") == seed
    assert listed("--until", "2022-06-04T07:00:47Z") == []
    assert listed("--feed", "1", "--category", "最新") == seed
    assert listed("--category", "CNBETA") == listed("--category", "cnBeta") == seed
    assert listed("--feed", str(CNBETA)) == seed


@pytest.mark.parametrize(
    ("options", "code", "message"),
    [
        (["--since", "yesterday"], 2, "'yesterday' is not a date"),
        (["--until", "2024-13-01"], 2, "'2024-13-01' is not a date"),
        (["--since", "2024-06-02", "--until", "2024-06-01"], 2, "--since is after --until"),
        (["--feed", "42"], 1, "no source '42'; `ingest feeds list` shows them"),
    ],
)
def test_bad_filters_are_refused_clearly(
    tmp_path: Path, cli_for: Any, options: list[str], code: int, message: str
) -> None:
    cli = cli_for(write_config(tmp_path))
    cli("db", "upgrade")
    result = cli("entries", "list", *options)
    assert result.exit_code == code
    assert message in result.stderr
