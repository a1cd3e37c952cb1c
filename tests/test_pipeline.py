"""Behaviour of a whole pass through the CLI: the seed, deduplication, edits, sightings."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import MutableMapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import frontmatter
import pytest
from structlog.testing import capture_logs

from ingest.config import load_settings
from ingest.digest import document
from ingest.errors import StoreError
from ingest.pipeline import runner
from ingest.pipeline.runner import Pass
from ingest.types import RunSummary
from scheduler.driver import run_once
from storage import Store, open_store
from tests.conftest import CNBETA, SEED, write_config


class _Attributes(HTMLParser):
    """Every (tag, attribute, value) of a fragment, and its visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.extend((tag, name, value or "") for name, value in attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _html_facts(fragment: str) -> dict[str, Any]:
    parser = _Attributes()
    parser.feed(fragment)
    return {
        "text": " ".join("".join(parser.text).split()),
        "img src": [v for t, n, v in parser.found if t == "img" and n == "src"],
        "img data-original": [v for t, n, v in parser.found if n == "data-original"],
        "referrerpolicy": [v for t, n, v in parser.found if n == "referrerpolicy"],
        "a href": [v for t, n, v in parser.found if t == "a" and n == "href"],
        "a target": [v for t, n, v in parser.found if t == "a" and n == "target"],
    }


def _sightings(db_url: str) -> list[tuple[int, str]]:
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        return conn.execute("SELECT post_id, entry_key FROM sightings ORDER BY id").fetchall()


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    folder = tmp_path / "seeds"
    folder.mkdir()
    shutil.copy(SEED, folder)
    return folder


def test_cnbeta_item_renders_the_seed_front_matter_and_body(tmp_path: Path, cli_for: Any) -> None:
    cli = cli_for(write_config(tmp_path, [{"url": str(CNBETA), "categories": ["新媒体"]}]))
    assert cli("run").exit_code == 0

    shown = frontmatter.loads(cli("entries", "show", "1").stdout)
    seed = frontmatter.load(SEED)

    assert shown.metadata == seed.metadata
    assert list(shown.metadata) == list(seed.metadata)  # key order too
    assert _html_facts(shown.content) == _html_facts(seed.content)


def test_export_writes_the_seed_under_its_sources_categories_and_rewrites_nothing_twice(
    tmp_path: Path, cli_for: Any
) -> None:
    cli = cli_for(write_config(tmp_path, [{"url": str(CNBETA), "categories": ["新媒体"]}]))
    cli("run")
    out = tmp_path / "site"

    first = cli("export", str(out))
    # The configured category and the feed's name; the item's own category 最新 is a tag.
    exported = out / "新媒体" / "cnBeta" / "Nature 证实：学术界刮起离职潮 大批学者涌向工业界.md"
    stamp = exported.stat().st_mtime_ns
    second = cli("export", str(out))

    assert first.stdout.startswith("1 written, 0 unchanged")
    assert second.stdout.startswith("0 written, 1 unchanged")
    assert exported.stat().st_mtime_ns == stamp
    post = frontmatter.load(exported)
    assert post.metadata == frontmatter.load(SEED).metadata
    facts = _html_facts(post.content)
    assert facts["img src"] == _html_facts(frontmatter.load(SEED).content)["img src"]


def test_seed_folder_and_cnbeta_feed_are_one_post_with_two_sightings(
    tmp_path: Path, seeds: Path, cli_for: Any, sqlite_url: str
) -> None:
    config = write_config(
        tmp_path, [{"url": str(seeds)}, {"url": str(CNBETA), "categories": ["新媒体"]}]
    )
    cli = cli_for(config)

    first = cli("run")
    second = cli("run", "--all")

    assert first.exit_code == 0
    assert "posts: 1 new, 0 updated, 1 duplicate, 0 unchanged" in first.stdout
    assert "posts: 0 new, 0 updated, 0 duplicate, 2 unchanged" in second.stdout
    assert len(cli("entries", "list", "--json").json()) == 1
    assert sorted(key for _, key in _sightings(sqlite_url)) == [
        "000_dd9e6ee67f5cdc93.txt",
        "cnbeta-fixture-1280123",
    ]
    assert {post_id for post_id, _ in _sightings(sqlite_url)} == {1}


def _feed(channel: str, guid: str, title: str, body: str) -> str:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>{channel}</title><link>https://example.org/</link>
<item><title>{title}</title><guid>{guid}</guid><link>https://example.org/{guid}</link>
<description><![CDATA[{body}]]></description>
<pubDate>Tue, 01 Oct 2024 08:00:00 +0200</pubDate></item>
</channel></rss>"""


def test_an_item_edited_between_runs_is_one_post_with_revision_two(
    tmp_path: Path, cli_for: Any
) -> None:
    feed = tmp_path / "feed.xml"
    cli = cli_for(write_config(tmp_path, [{"url": str(feed)}]))
    feed.write_text(_feed("Blog", "post-1", "Hello", "<p>first version</p>"), encoding="utf-8")
    cli("run")
    feed.write_text(_feed("Blog", "post-1", "Hello", "<p>second version</p>"), encoding="utf-8")

    result = cli("run", "--all")

    assert "posts: 0 new, 1 updated" in result.stdout
    posts = cli("entries", "list", "--json").json()
    assert len(posts) == 1
    assert posts[0]["body"] == "<p>second version</p>"
    assert posts[0]["revision"] == 2
    assert cli("run", "--all").stdout.count("1 unchanged") == 1  # and it stays revision 2
    assert cli("entries", "show", "1", "--json").json()["revision"] == 2


def test_the_same_article_in_two_feeds_is_one_post(tmp_path: Path, cli_for: Any) -> None:
    article = "<p>The same words, syndicated.</p>"
    (tmp_path / "a.xml").write_text(_feed("A", "a-1", "Shared", article), encoding="utf-8")
    (tmp_path / "b.xml").write_text(_feed("B", "b-9", "Shared", article), encoding="utf-8")
    cli = cli_for(
        write_config(tmp_path, [{"url": str(tmp_path / "a.xml")}, {"url": str(tmp_path / "b.xml")}])
    )

    result = cli("run")

    assert "posts: 1 new, 0 updated, 1 duplicate" in result.stdout
    assert len(cli("entries", "list", "--json").json()) == 1


def test_two_sources_serving_different_versions_do_not_revise_each_other(
    tmp_path: Path, cli_for: Any
) -> None:
    """A feed edits an article the seed folder also has: the post follows the edit once."""
    (tmp_path / "a.xml").write_text(_feed("A", "x", "Same", "<p>v1</p>"), encoding="utf-8")
    (tmp_path / "b.xml").write_text(_feed("B", "y", "Same", "<p>v1</p>"), encoding="utf-8")
    cli = cli_for(
        write_config(tmp_path, [{"url": str(tmp_path / "a.xml")}, {"url": str(tmp_path / "b.xml")}])
    )
    cli("run")
    (tmp_path / "a.xml").write_text(_feed("A", "x", "Same", "<p>v2</p>"), encoding="utf-8")

    cli("run", "--all")
    cli("run", "--all")

    posts = cli("entries", "list", "--json").json()
    assert [(p["body"], p["revision"]) for p in posts] == [("<p>v2</p>", 2)]


def test_default_config_ingests_the_shipped_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_for: Any
) -> None:
    monkeypatch.chdir(tmp_path)  # no ingest.toml here: the built-in default applies
    cli = cli_for(None)

    assert cli("run").exit_code == 0
    posts = cli("entries", "list", "--json").json()

    assert [p["title"] for p in posts] == ["Nature 证实：学术界刮起离职潮 大批学者涌向工业界"]
    assert posts[0]["categories"] == ["新媒体", "cnBeta", "最新"]
    assert cli("run").stdout.startswith("nothing is due")


def test_one_log_event_per_source_with_url_status_duration_and_counts(
    tmp_path: Path, sqlite_url: str
) -> None:
    _, logs = _pass_over_cnbeta(tmp_path, sqlite_url)

    (event,) = [e for e in logs if e["event"] == "source_processed"]
    assert event["url"] == str(CNBETA)
    assert event["status"] == "ok"
    assert event["log_level"] == "info"
    assert (event["new"], event["updated"], event["duplicate"], event["unchanged"]) == (1, 0, 0, 0)
    assert event["duration_s"] >= 0


def _pass_over_cnbeta(
    tmp_path: Path, sqlite_url: str
) -> tuple[RunSummary, list[MutableMapping[str, Any]]]:
    """One pass over a store whose only source is the cnBeta fixture: its summary and logs."""
    settings = load_settings(write_config(tmp_path, [{"url": str(CNBETA)}]), env={})
    store = open_store(sqlite_url)
    try:
        with capture_logs() as logs:
            summary = asyncio.run(run_once(store, settings))
    finally:
        store.close()
    return summary, logs


def _source_row(db_url: str) -> tuple[Any, ...]:
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        row: tuple[Any, ...] = conn.execute(
            "SELECT error_count, next_check_at IS NOT NULL, lease_owner, last_error FROM sources"
        ).fetchone()
    return row


def test_a_check_the_store_refuses_backs_the_source_off_like_any_failure(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Else the daemon would fetch it again at every tick, without end."""
    real = Store.record_checks

    def refuse_posts(store: Store, checks: Any, *, decide: Any, route: Any = None) -> Any:
        if any(check.posts for check in checks):
            raise StoreError(store.shown_url, "disk I/O error")
        return real(store, checks, decide=decide, route=route)

    monkeypatch.setattr(Store, "record_checks", refuse_posts)
    summary, _ = _pass_over_cnbeta(tmp_path, sqlite_url)
    (outcome,) = summary.outcomes

    assert outcome.error == "could not store the check: disk I/O error"
    assert (outcome.status, outcome.error_kind) == ("error", "store")
    assert not outcome.stored
    errors, scheduled, owner, last_error = _source_row(sqlite_url)
    assert (errors, scheduled, owner) == (1, 1, None)
    assert last_error == "could not store the check: disk I/O error"


def test_a_bug_in_storing_a_check_is_a_bug_not_a_store_failure(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's contract raises StoreError for a store that fails; anything else is ours."""

    def crash(store: Store, checks: Any, *, decide: Any, route: Any = None) -> Any:
        raise KeyError("a bug")

    monkeypatch.setattr(Store, "record_checks", crash)
    summary, logs = _pass_over_cnbeta(tmp_path, sqlite_url)
    (outcome,) = summary.outcomes

    assert (outcome.status, outcome.error_kind, outcome.stored) == ("bug", "internal", False)
    assert "a bug in feed-ingest" in (outcome.error or "")
    assert any(entry["event"] == "source_crashed" for entry in logs)
    _, _, owner, _ = _source_row(sqlite_url)
    assert owner is None  # the lease was given back


def test_a_bug_while_processing_a_source_fails_it_and_gives_its_lease_back(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash(*_: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(Pass, "_process", crash)
    summary, _ = _pass_over_cnbeta(tmp_path, sqlite_url)

    assert summary.failed == []
    (bug,) = summary.bugs
    assert bug.status == "bug"
    assert bug.error_kind == "internal"
    assert bug.error is not None
    assert bug.error.startswith("internal error ZeroDivisionError: a bug")
    assert _source_row(sqlite_url)[2] is None  # no lease left behind


def test_a_bug_met_on_a_document_is_a_bug_not_the_feeds_fault_and_the_source_backs_off(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*_: object, **__: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(document, "digest_feed", crash)
    summary, logs = _pass_over_cnbeta(tmp_path, sqlite_url)

    assert summary.failed == []
    (bug,) = summary.bugs
    assert (bug.status, bug.error_kind, bug.stored) == ("bug", "internal", True)
    errors, scheduled, owner, last_error = _source_row(sqlite_url)
    assert (errors, scheduled, owner) == (1, 1, None)  # backs off: no retry in a loop
    assert last_error is not None
    assert last_error.startswith("internal error ZeroDivisionError")
    (crashed,) = [e for e in logs if e["event"] == "source_crashed"]
    assert crashed["exc_info"]


def test_a_bug_after_the_fetch_still_backs_the_source_off(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in deciding what a check changes must not make the daemon try the source again at
    every tick: the failure is saved as a bug's, with the backoff of any failure."""

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(runner, "after_success", crash)
    summary, _ = _pass_over_cnbeta(tmp_path, sqlite_url)
    (outcome,) = summary.outcomes

    assert (outcome.status, outcome.error_kind) == ("bug", "internal")
    errors, scheduled, owner, last_error = _source_row(sqlite_url)
    assert (errors, scheduled, owner) == (1, 1, None)
    assert "a bug in feed-ingest" in last_error
