"""Keep and block rules as a user meets them: the config, ``feeds update``, ``run``, ``stats``,
``parse``, the debug log and the daemon's metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ingest.config import load_settings
from tests.conftest import Cli, write_config
from tests.feedserver import FeedServer, Reply
from tests.test_daemon import daemon_config, free_port, metric, serve_until


def feed(name: str, *items: tuple[str, str, str]) -> bytes:
    """An RSS document named ``name``; ``items`` are (guid, title, text) triples."""
    body = "".join(
        f"<item><title>{title}</title><guid isPermaLink='false'>{guid}</guid>"
        f"<link>https://{name.lower()}.example/{guid}</link>"
        f"<description>&lt;p&gt;{text}&lt;/p&gt;</description></item>"
        for guid, title, text in items
    )
    return (
        f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>{name}"
        f"</title><link>https://{name.lower()}.example/</link>{body}</channel></rss>"
    ).encode()


NEWS = feed(
    "News",
    ("a1", "Sponsored: the best VPN", "Buy it now."),
    ("a2", "Rust 1.80 released", "LazyLock is stable."),
    ("a3", "Python 3.13", "Free-threaded builds."),
)
NOISY = feed(
    "Noisy",
    ("b1", "Rust in the kernel", "Drivers."),
    ("b2", "Go generics", "Type parameters."),
    ("b3", "A Rust giveaway", "This post is sponsored by a keyboard maker."),
)


@pytest.fixture
def feeds(tmp_path: Path) -> Path:
    (tmp_path / "news.xml").write_bytes(NEWS)
    (tmp_path / "noisy.xml").write_bytes(NOISY)
    return tmp_path


def titles(cli: Cli) -> list[str]:
    return sorted(post["title"] for post in cli("entries", "list", "--json").json())


def log_events(stderr: str, event: str) -> list[dict[str, Any]]:
    lines = (json.loads(line) for line in stderr.splitlines() if line.startswith("{"))
    return [line for line in lines if line["event"] == event]


def test_global_and_source_rules_decide_what_a_run_stores_and_every_report_counts_it(
    feeds: Path, cli_for: Any
) -> None:
    config = write_config(
        feeds,
        [{"url": "news.xml"}, {"url": "noisy.xml", "keep": ["(?i)rust"]}],
        filters={"block": ["(?i)sponsored"]},
        log={"format": "json", "level": "debug"},
    )
    cli: Cli = cli_for(config)

    run = cli("run")

    assert run.exit_code == 0, run.stdout
    assert titles(cli) == ["Python 3.13", "Rust 1.80 released", "Rust in the kernel"]
    assert "posts: 3 new, 0 updated, 0 duplicate, 0 unchanged, 0 skipped" in run.stdout
    assert "filtered: 3 entries kept out by keep/block rules" in run.stdout

    filtered = {e["guid"]: e for e in log_events(run.stderr, "entry_filtered")}
    assert {guid: e["rule"] for guid, e in filtered.items()} == {
        "a1": "[filters] block[0] '(?i)sponsored'",
        "b2": "source keep: no keep rule matched",
        "b3": "[filters] block[0] '(?i)sponsored'",
    }
    assert filtered["b3"]["title"] == "A Rust giveaway"  # blocked for its body text
    assert all(e["level"] == "debug" for e in filtered.values())
    processed = log_events(run.stderr, "source_processed")
    assert sorted(e["filtered"] for e in processed) == [1, 2]

    report = cli("stats", "--json").json()
    assert [s["filtered"] for s in report["sources"]] == [1, 2]
    assert report["totals"]["filtered"] == 3
    assert "filtered: 2 entries of its last document" in cli("stats").stdout

    listed = cli("feeds", "list", "--json").json()
    assert [(s["keep"], s["block"]) for s in listed] == [([], []), (["(?i)rust"], [])]
    assert "keep: '(?i)rust'" in cli("feeds", "list").stdout


def test_rules_changed_in_the_config_apply_from_the_next_run(feeds: Path, cli_for: Any) -> None:
    cli: Cli = cli_for(write_config(feeds, [{"url": "noisy.xml", "block": "title:^Go "}]))
    assert cli("run").exit_code == 0
    assert titles(cli) == ["A Rust giveaway", "Rust in the kernel"]

    cli = cli_for(write_config(feeds, [{"url": "noisy.xml"}]))
    again = cli("run", "--all")
    assert "filtered" not in again.stdout
    assert titles(cli) == ["A Rust giveaway", "Go generics", "Rust in the kernel"]
    assert cli("stats", "--json").json()["sources"][0]["filtered"] == 0


def test_feeds_update_sets_lists_and_clears_the_rules_of_a_cli_source(
    feeds: Path, cli_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(feeds)
    cli: Cli = cli_for(write_config(feeds))
    assert cli("feeds", "add", "--local", "news.xml").exit_code == 0

    updated = cli(
        "feeds", "update", "1", "--block", "(?i)sponsored", "--block", "title:^Python", "--json"
    )
    assert updated.json()["block"] == ["(?i)sponsored", "title:^Python"]
    assert "block: '(?i)sponsored' 'title:^Python'" in cli("feeds", "list").stdout
    run = cli("run")
    assert "filtered: 2 entries kept out by keep/block rules" in run.stdout
    assert titles(cli) == ["Rust 1.80 released"]

    swapped = cli("feeds", "update", "1", "--clear-block", "--keep", "Python", "--json").json()
    assert (swapped["keep"], swapped["block"]) == (["Python"], [])
    cli("run", "--all")
    assert titles(cli) == ["Python 3.13", "Rust 1.80 released"]

    cleared = cli("feeds", "update", "1", "--clear-keep", "--name", "News", "--json").json()
    assert (cleared["keep"], cleared["block"], cleared["name"]) == ([], [], "News")
    assert "filtered" not in cli("run", "--all").stdout
    assert len(titles(cli)) == 3


@pytest.mark.parametrize(
    ("sources", "tables", "where"),
    [
        (
            [{"url": "news.xml"}, {"url": "noisy.xml", "block": ["ok", "(?i)free (beer"]}],
            {},
            "sources[1].block[1]: '(?i)free (beer' is not a valid regular expression: "
            "missing ), unterminated subpattern at position 9",
        ),
        (
            [{"url": "news.xml"}],
            {"filters": {"keep": ["[rust"]}},
            "[filters] keep[0]: '[rust' is not a valid regular expression: unterminated "
            "character set at position 0",
        ),
    ],
)
def test_a_bad_rule_in_the_config_exits_2_naming_it(
    feeds: Path,
    cli_for: Any,
    sources: list[dict[str, Any]],
    tables: dict[str, Any],
    where: str,
) -> None:
    config = write_config(feeds, sources, **tables)
    run = cli_for(config)("run")
    assert run.exit_code == 2
    assert run.stderr == f"error: {config}: {where}\n"


def test_a_bad_rule_in_the_environment_or_an_option_exits_2_naming_it(
    feeds: Path, cli_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(feeds)
    cli: Cli = cli_for(write_config(feeds))
    run = cli("run", env={"INGEST_FILTERS_BLOCK": "(?i)sponsored\nx{2,1}"})
    assert run.exit_code == 2
    assert run.stderr.startswith("error: env INGEST_FILTERS_BLOCK[1]: 'x{2,1}' is not a valid")

    cli("feeds", "add", "--local", "news.xml")
    update = cli("feeds", "update", "1", "--keep", "rust", "--keep", "(")
    assert update.exit_code == 2
    assert update.stderr.startswith("error: --keep: '(' is not a valid regular expression: missing")
    assert cli("feeds", "list", "--json").json()[0]["keep"] == []


def test_the_environment_gives_one_global_rule_per_line(feeds: Path, cli_for: Any) -> None:
    cli: Cli = cli_for(write_config(feeds, [{"url": "news.xml"}]))
    run = cli("run", env={"INGEST_FILTERS_BLOCK": "(?i)sponsored\ntitle:^Python 3"})
    assert "filtered: 2 entries" in run.stdout
    assert titles(cli) == ["Rust 1.80 released"]


def test_parse_shows_what_the_rules_would_keep_out(feeds: Path, cli_for: Any) -> None:
    config = write_config(
        feeds,
        [{"url": "noisy.xml", "keep": ["(?i)rust"]}],
        filters={"block": ["(?i)sponsored"]},
    )
    parsed = cli_for(config)("parse", str(feeds / "noisy.xml"), "--json")
    assert parsed.exit_code == 0
    assert [post["title"] for post in parsed.json()] == ["Rust in the kernel"]
    assert "filtered: 'Go generics' (b2) by source keep: no keep rule matched" in parsed.stderr
    assert "filtered: 'A Rust giveaway' (b3) by [filters] block[0] '(?i)sponsored'" in parsed.stderr


def test_the_daemon_counts_filtered_entries_in_its_metrics(tmp_path: Path, sqlite_url: str) -> None:
    with FeedServer() as server:
        server.routes["/feed"] = lambda _seen: Reply(200, NOISY)
        config = daemon_config(tmp_path, [server.url("/feed")], free_port())
        with config.open("a", encoding="utf-8") as handle:
            handle.write('[filters]\nblock = ["title:^Go"]\n')
        seen = serve_until(
            load_settings(config, env={}),
            sqlite_url,
            lambda: len(server.requests_to("/feed")) >= 2,
            "two polls",
            "/metrics",
        )

    assert metric(seen["/metrics"][1], "ingest_entries_filtered_total") >= 1
    assert metric(seen["/metrics"][1], 'ingest_posts_total{change="new"}') == 2
