"""The command line as a user meets it: exit codes, messages, JSON shapes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ingest.digest import document
from tests.conftest import CNBETA, Cli, write_config
from tests.feedserver import FeedServer, Reply

POST_KEYS = {
    "id",
    "title",
    "categories",
    "headimg",
    "author",
    "comments",
    "date",
    "thumbnail",
    "body",
    "link",
    "guid",
    "source",
    "content_hash",
    "published",
    "revision",
}


def test_run_exits_0_when_every_source_succeeds(tmp_path: Path, cli_for: Any) -> None:
    result = cli_for(write_config(tmp_path, [{"url": str(CNBETA)}]))("run")
    assert result.exit_code == 0
    assert "sources: 1 ok, 0 failed" in result.stdout


def test_run_exits_1_naming_the_failed_source_and_keeps_the_good_one(
    tmp_path: Path, cli_for: Any
) -> None:
    missing = tmp_path / "nowhere.xml"
    broken = tmp_path / "broken.xml"
    broken.write_text("<html><body>not a feed</body></html>", encoding="utf-8")
    cli = cli_for(
        write_config(tmp_path, [{"url": str(CNBETA)}, {"url": str(missing)}, {"url": str(broken)}])
    )

    result = cli("run")

    assert result.exit_code == 1
    assert f"failed: {missing}: no such file or folder" in result.stdout
    assert f"failed: {broken}: got an HTML page, not a feed" in result.stdout
    assert "sources: 1 ok, 2 failed" in result.stdout
    assert len(cli("entries", "list", "--json").json()) == 1


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('[fetch]\ntimeout = "soon"\n', '[fetch] timeout: "soon" is not a duration'),
        ('[fetch]\ntimeut = "5s"\n', "[fetch] timeut: unknown key; known: timeout"),
        ("[fecth]\n", "fecth: unknown table or key"),
        ('[[sources]]\nname = "x"\n', "sources[0]: has no url"),
        (
            '[[sources]]\nurl = "ftp://x.example/f"\n',
            "sources[0].url: 'ftp://x.example/f': the ftp: scheme is not supported",
        ),
        (
            '[[sources]]\nurl = "https://x.example/f"\ninterval = 5\ncolour = 1\n',
            "sources[0].colour: unknown key",
        ),
        ('[[sources]]\nurl = "https://x.example/f"\ninterval = "-5m"\n', "sources[0].interval:"),
        ("this is = not toml [", "not valid TOML"),
    ],
)
def test_bad_config_exits_2_with_the_key_and_the_reason(
    tmp_path: Path, cli_for: Any, config: str, message: str
) -> None:
    path = tmp_path / "ingest.toml"
    path.write_text(config, encoding="utf-8")

    result = cli_for(path)("run")

    assert result.exit_code == 2
    assert message in result.stderr
    assert str(path) in result.stderr
    assert result.stdout == ""


def test_a_missing_config_file_exits_2(tmp_path: Path, cli_for: Any) -> None:
    result = cli_for(tmp_path / "absent.toml")("run")
    assert result.exit_code == 2
    assert "absent.toml: config file not found" in result.stderr


def test_an_unknown_environment_setting_exits_2(tmp_path: Path, cli_for: Any) -> None:
    result = cli_for(write_config(tmp_path))("run", env={"INGEST_FETCH_TIMOUT": "5s"})
    assert result.exit_code == 2
    assert "INGEST_FETCH_TIMOUT: unknown setting" in result.stderr


def test_bad_usage_exits_2(tmp_path: Path, cli_for: Any) -> None:
    cli = cli_for(write_config(tmp_path))
    assert cli("run", "--everything").exit_code == 2
    assert cli("entries", "list", "--limit", "0").exit_code == 2
    assert cli("export", str(tmp_path), "--layout", "jekyll").exit_code == 2


def test_an_unusable_store_exits_2(tmp_path: Path) -> None:
    for db in ("mysql+nodriver://x/y", f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}"):
        result = Cli(db, write_config(tmp_path))("entries", "list")
        assert result.exit_code == 2
        assert result.stderr.startswith(f"error: store {db}: ")


@pytest.mark.parametrize(
    ("db", "shown"),
    [
        (
            "postgresql+psycopg://u:s3cret@127.0.0.1:1/x",  # port 1: refused at once
            "postgresql+psycopg://u:***@127.0.0.1:1/x: cannot open",
        ),
        (
            "postgresql+psycopg://u@127.0.0.1:1/x?password=s3cret",
            "postgresql+psycopg://u@127.0.0.1:1/x?password=***: cannot open",
        ),
        (
            "postgresql+psycopg://u:s3cret@127.0.0.1:port/x",
            "postgresql+psycopg://u:***@127.0.0.1:port/x: not a usable database URL",
        ),
    ],
    ids=["refused", "password-parameter", "bad-url"],
)
def test_the_store_password_is_never_printed(tmp_path: Path, db: str, shown: str) -> None:
    result = Cli(db, write_config(tmp_path))("stats")

    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: store {shown}")
    assert "s3cret" not in result.stdout + result.stderr


def test_a_store_damaged_past_its_first_page_exits_2_naming_it(
    tmp_path: Path, cli_for: Any, sqlite_url: str
) -> None:
    cli = cli_for(write_config(tmp_path, [{"url": str(CNBETA)}]))
    cli("run")
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'posts'").fetchone()
    conn.close()
    with path.open("r+b") as handle:  # the posts table's page: garbage
        handle.seek((root - 1) * page_size)
        handle.write(bytes(range(256)) * (page_size // 256))

    for command in (["entries", "list"], ["export", str(tmp_path / "out")]):
        result = cli(*command)
        assert result.exit_code == 2
        assert result.stderr == (
            f"error: store {sqlite_url}: cannot be read or written: database disk image is "
            "malformed\n"
        )


def test_entries_list_json_is_an_array_of_posts(tmp_path: Path, cli_for: Any) -> None:
    cli = cli_for(write_config(tmp_path, [{"url": str(CNBETA), "categories": ["新媒体"]}]))
    cli("run")

    posts = cli("entries", "list", "--json").json()

    assert isinstance(posts, list)
    assert set(posts[0]) == POST_KEYS
    assert posts[0]["published"] == "2022-06-04T07:00:48Z"
    assert posts[0]["date"] == "Sat, 04 Jun 2022 07:00:48 GMT"
    assert posts[0]["categories"] == ["新媒体", "cnBeta", "最新"]
    assert posts[0]["source"] == str(CNBETA)
    assert posts[0]["revision"] == 1
    assert len(posts[0]["content_hash"]) == 64
    assert cli("entries", "show", "1", "--json").json() == posts[0]


def test_entries_list_limit_and_newest_first(tmp_path: Path, cli_for: Any) -> None:
    feed = tmp_path / "feed.xml"
    items = "".join(
        f"<item><title>Post {day}</title><guid>p{day}</guid>"
        f"<pubDate>{day:02d} Jan 2024 00:00:00 GMT</pubDate></item>"
        for day in (3, 1, 2)
    )
    feed.write_text(f'<rss version="2.0"><channel><title>F</title>{items}</channel></rss>', "utf-8")
    cli = cli_for(write_config(tmp_path, [{"url": str(feed)}]))
    cli("run")

    titles = [p["title"] for p in cli("entries", "list", "--json", "--limit", "2").json()]

    assert titles == ["Post 3", "Post 2"]
    assert cli("entries", "list").stdout.splitlines()[0].endswith("Post 3")


def test_entries_show_of_an_unknown_id_exits_1(tmp_path: Path, cli_for: Any) -> None:
    cli = cli_for(write_config(tmp_path))
    cli("db", "upgrade")
    result = cli("entries", "show", "42")
    assert result.exit_code == 1
    assert "no post with id 42" in result.stderr


def test_the_store_comes_from_ingest_db_when_no_option_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from ingest.cli.app import app

    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, [{"url": str(CNBETA)}])
    env = {"INGEST_DB": f"sqlite:///{tmp_path / 'env.db'}", "INGEST_CONFIG": str(config)}
    assert CliRunner().invoke(app, ["run"], env=env).exit_code == 0
    assert (tmp_path / "env.db").is_file()
    assert not (tmp_path / "ingest.db").exists()


def test_config_show_tells_where_each_value_came_from(tmp_path: Path, cli_for: Any) -> None:
    cli = cli_for(write_config(tmp_path, [{"url": str(CNBETA)}], fetch={"per_host": 3}))

    shown = cli("config", "show", "--json", env={"INGEST_FETCH_TIMEOUT": "7s"}).json()

    settings = {row.pop("key"): row for row in shown["settings"]}
    assert settings["fetch.timeout"] == {"value": "7s", "origin": "env INGEST_FETCH_TIMEOUT"}
    assert settings["fetch.per_host"]["value"] == 3
    assert settings["fetch.per_host"]["origin"].endswith("ingest.toml")
    assert settings["serve.port"] == {"value": 8080, "origin": "default"}
    assert shown["sources"] == [{"url": str(CNBETA)}]
    assert shown["sources_origin"].endswith("ingest.toml")
    text = cli("config", "show").stdout
    assert "fetch.per_host               = 3" in text


@pytest.mark.parametrize(
    ("listen", "asked"),
    [("127.0.0.2", "127.0.0.2"), ("::1", "::1"), ("0.0.0.0", "127.0.0.1"), ("::", "127.0.0.1")],
)
def test_healthcheck_asks_the_address_the_daemon_listens_on(
    tmp_path: Path, cli_for: Any, listen: str, asked: str
) -> None:
    with FeedServer(asked) as daemon:
        daemon.routes["/healthz"] = Reply(200, b"ok: last tick 1s ago\n")
        config = write_config(tmp_path, serve={"host": listen, "port": daemon.port})

        result = cli_for(config)("healthcheck")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "ok: last tick 1s ago\n"


def test_run_on_a_terminal_draws_a_progress_bar(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path, [{"url": str(CNBETA)}])
    main, child = os.openpty()
    ingest = str(Path(sys.executable).parent / "ingest")
    done = subprocess.run(
        [ingest, "--db", sqlite_url, "--config", str(config), "run"],
        stdin=child,
        stdout=child,
        stderr=child,
        check=False,
        timeout=60,
    )
    os.close(child)
    output = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(main)

    assert done.returncode == 0
    assert b"checking sources" in output
    assert b"1/1" in output
    assert b"sources: 1 ok, 0 failed" in output


def test_stats_show_the_kind_of_the_last_error(tmp_path: Path, cli_for: Any) -> None:
    missing = tmp_path / "no-such-feed.xml"
    cli = cli_for(write_config(tmp_path, [{"url": str(missing)}]))

    assert cli("run").exit_code == 1
    text = cli("stats").stdout
    (source,) = cli("stats", "--json").json()["sources"]

    assert "last error (not_found): no such file or folder" in text
    assert (source["last_error"], source["last_error_kind"]) == (
        "no such file or folder",
        "not_found",
    )


def test_a_bug_exits_70_and_is_never_reported_as_the_feeds_fault(
    tmp_path: Path, cli_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*_: object, **__: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(document, "digest_feed", crash)
    cli = cli_for(write_config(tmp_path, [{"url": str(CNBETA)}]))

    run = cli("run")
    stats = cli("stats").stdout

    assert run.exit_code == 70
    assert "failed:" not in run.stdout
    assert "a bug in feed-ingest" in run.stdout
    assert "sources: 0 ok, 0 failed, 1 hit a bug in feed-ingest" in run.stdout
    assert "bug in feed-ingest (internal): internal error ZeroDivisionError" in stats
