"""Sources do what the user said: the config manages its own sources, the built-in demo source
stays out of real stores, ``ingest run ID...`` checks just those, OPML keeps every setting."""

from __future__ import annotations

import shutil
from pathlib import Path

from ingest.config import shipped_seeds
from tests.conftest import CNBETA, SEED, Cli, write_config
from tests.feedserver import FeedServer, Reply, rss


def urls(cli: Cli) -> list[tuple[str, bool]]:
    return [(s["url"], s["enabled"]) for s in cli("feeds", "list", "--json").json()]


def test_a_fresh_store_without_config_ingests_the_seed_post(
    elsewhere: Path, sqlite_url: str
) -> None:
    cli = Cli(sqlite_url, None)
    assert cli("run").exit_code == 0
    assert len(cli("entries", "list", "--json").json()) == 1
    assert urls(cli) == [(str(shipped_seeds()), True)]


def test_the_demo_source_never_joins_a_store_with_sources_of_its_own(
    elsewhere: Path, sqlite_url: str
) -> None:
    cli = Cli(sqlite_url, None)
    cli("feeds", "add", str(CNBETA), "--local")

    assert cli("run").exit_code == 0
    assert cli("run", "--all").exit_code == 0
    assert urls(cli) == [(str(CNBETA), True)]


def test_a_demo_source_added_before_is_retired_and_stays_out(
    elsewhere: Path, sqlite_url: str
) -> None:
    cli = Cli(sqlite_url, None)
    cli("run")  # the quick start: the store holds the seeds folder
    cli("feeds", "add", str(CNBETA), "--local")

    run = cli("run")

    seeds = str(shipped_seeds())
    assert f"retired: {seeds}: the built-in demo source, left out" in run.stdout
    assert "source_retired" in run.stderr
    assert urls(cli) == [(seeds, False), (str(CNBETA), True)]
    assert "retired: left the config" in cli("feeds", "list").stdout
    assert "retired" not in cli("run", "--all").stdout
    assert len(cli("entries", "list", "--json").json()) == 1  # its post is kept
    removed = cli("feeds", "remove", seeds)
    assert removed.exit_code == 0
    assert "config" not in removed.stderr
    assert urls(cli) == [(str(CNBETA), True)]
    assert cli("run", "--all").exit_code == 0
    assert urls(cli) == [(str(CNBETA), True)]


def test_a_source_removed_from_the_config_is_retired_and_comes_back_when_listed_again(
    tmp_path: Path, cli_for: object
) -> None:
    mine = tmp_path / "mine.xml"
    shutil.copy(CNBETA, mine)
    config = write_config(tmp_path, [{"url": str(SEED)}, {"url": str(CNBETA)}])
    cli = Cli(f"sqlite:///{tmp_path / 'ingest.db'}", config)
    cli("feeds", "add", str(mine), "--local")
    cli("run")

    write_config(tmp_path, [{"url": str(SEED)}])
    run = cli("run", "--all")

    assert run.exit_code == 0
    assert f"retired: {CNBETA}: no longer in the config ({config}); its posts are kept" in (
        run.stdout
    )
    assert "sources: 2 ok, 0 failed" in run.stdout
    assert urls(cli) == [(str(mine), True), (str(SEED), True), (str(CNBETA), False)]
    assert len(cli("entries", "list", "--feed", str(CNBETA), "--json").json()) == 1
    assert "retired" not in cli("run", "--all").stdout  # said once

    write_config(tmp_path, [{"url": str(SEED)}, {"url": str(CNBETA)}])
    back = cli("run")
    assert f"polled again: {CNBETA}: the config lists it again" in back.stdout
    assert "sources: 1 ok, 0 failed" in back.stdout
    assert urls(cli) == [(str(mine), True), (str(SEED), True), (str(CNBETA), True)]


def test_ingest_sources_replaces_the_config_files_sources(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'ingest.db'}", write_config(tmp_path, [{"url": str(SEED)}]))
    cli("run")

    run = cli("run", env={"INGEST_SOURCES": f"{CNBETA}"})
    assert f"retired: {SEED}: no longer in the config (INGEST_SOURCES)" in run.stdout
    assert urls(cli) == [(str(SEED), False), (str(CNBETA), True)]

    later = cli("run", "--all", env={"INGEST_SOURCES": f"{SEED} {CNBETA}"})
    assert f"polled again: {SEED}" in later.stdout
    assert "sources: 2 ok, 0 failed" in later.stdout


def test_run_with_ids_checks_just_those_sources_due_or_not(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'ingest.db'}", write_config(tmp_path))
    seed, cnbeta = (cli("feeds", "add", str(p), "--local", "--json").json() for p in (SEED, CNBETA))

    first = cli("run", str(seed["id"]))
    again = cli("run", str(SEED))  # not due any more: checked all the same

    assert (first.exit_code, again.exit_code) == (0, 0)
    assert "sources: 1 ok, 0 failed" in again.stdout
    checked = {s["id"]: s["last_checked_at"] for s in cli("stats", "--json").json()["sources"]}
    assert checked[seed["id"]] is not None
    assert checked[cnbeta["id"]] is None
    unknown = cli("run", str(seed["id"]), "https://never.example/feed")
    assert (unknown.exit_code, unknown.stdout) == (1, "")
    assert unknown.stderr == (
        "error: no source 'https://never.example/feed'; `ingest feeds list` shows them\n"
    )


def test_opml_export_then_import_gives_the_same_sources(tmp_path: Path) -> None:
    with FeedServer() as server:
        server.routes["/a"] = Reply(200, rss("A", ("1", "one"), channel_title="Feed A title"))
        server.routes["/b"] = Reply(200, rss("B", ("2", "two")))
        config = write_config(tmp_path, fetch={"allow_private_networks": True})
        first = Cli(f"sqlite:///{tmp_path / 'first.db'}", config)
        first("feeds", "add", server.url("/a"), "--interval", "2h", "--category", "x")
        first("feeds", "add", server.url("/b"), "--name", "Mine", "--category", "x")
        first("feeds", "update", "2", "--interval", "45m", "--no-comments")
        assert first("run").exit_code == 0  # the feeds' own titles are stored now
        exported = tmp_path / "subs.opml"
        exported.write_text(first("feeds", "export").stdout, encoding="utf-8")

        second = Cli(f"sqlite:///{tmp_path / 'second.db'}", config)
        assert second("feeds", "import", str(exported)).exit_code == 0

    keys = ("url", "name", "categories", "interval", "comments", "max_body")

    def sources(cli: Cli) -> list[dict[str, object]]:
        return [{k: s[k] for k in keys} for s in cli("feeds", "list", "--json").json()]

    assert sources(second) == sources(first)
    assert [s["name"] for s in sources(second)] == [None, "Mine"]
