"""A feed behind a password and a token: fetched with them, and neither ever shown or published.

DESIGN §3: credentials in a URL are never printed, logged, stored in a post or exported.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, CliResult, write_config
from tests.feedserver import FeedServer, Reply, needs_login

SECRETS = ("s3cret", "t0ps3cret")
PRIVATE = (
    b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Private</title>'
    b"<link>https://private.example/</link><item><title>Members only</title>"
    b'<guid isPermaLink="false">m1</guid><link>#m1</link>'
    b"<description>&lt;p&gt;See &lt;a href=&quot;#notes&quot;&gt;the notes&lt;/a&gt;."
    b"&lt;img src=&quot;#cover&quot;&gt;&lt;/p&gt;</description></item></channel></rss>"
)
"""Links relative to the document itself (footnotes, anchors): resolved against the feed's
URL, they would carry its query, token included."""
LOGIN_PAGE = b'<html><head><link rel="alternate" type="application/rss+xml" href="#rss"></head>'


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as running:
        running.routes["/feed?token=t0ps3cret"] = needs_login("user", "s3cret", Reply(200, PRIVATE))
        running.routes["/page?token=t0ps3cret"] = Reply(200, LOGIN_PAGE)
        yield running


def _secret(url: str) -> str:
    return url.replace("://", "://user:s3cret@", 1) + "?token=t0ps3cret"


def _shown(url: str) -> str:
    return url.replace("://", "://user:***@", 1) + "?token=***"


def _assert_no_secret(*outputs: str) -> None:
    for output in outputs:
        for secret in SECRETS:
            assert secret not in output


class _Recorder:
    """The CLI, keeping everything every command printed."""

    def __init__(self, cli: Cli) -> None:
        self.cli = cli
        self.printed: list[str] = []

    def __call__(self, *args: str) -> CliResult:
        result = self.cli(*args)
        self.printed += [result.stdout, result.stderr]
        return result


def test_a_feed_behind_credentials_is_fetched_and_they_are_shown_nowhere(
    server: FeedServer, tmp_path: Path, cli_for: Any
) -> None:
    feed, page = server.url("/feed"), server.url("/page")
    config = write_config(
        tmp_path,
        [{"url": _secret(page)}],
        fetch={"allow_private_networks": True},
        log={"format": "json", "level": "debug"},
    )
    cli = _Recorder(cli_for(config))

    added = cli("feeds", "add", _secret(feed))
    run = cli("run")
    posts = cli("entries", "list", "--json").json()
    stats = cli("stats").stdout
    report = cli("stats", "--json").json()
    listed = cli("feeds", "list").stdout
    cli("feeds", "list", "--json")
    shown = cli("config", "show").stdout
    settings = cli("config", "show", "--json").json()
    cli("entries", "show", "1")
    exported = cli("export", str(tmp_path / "site"))
    opml = cli("feeds", "export").stdout
    removed = cli("feeds", "remove", _secret(feed))

    assert run.exit_code == 1
    assert [post["title"] for post in posts] == ["Members only"]
    assert server.requests_to("/feed?token=t0ps3cret")[-1].headers["authorization"]
    _assert_no_secret(*cli.printed)
    files = [path.read_text("utf-8") for path in (tmp_path / "site").rglob("*.md")]
    assert exported.exit_code == 0
    assert len(files) == 1
    _assert_no_secret(*files)

    assert added.stdout == f"added source 1: {_shown(feed)}\n"
    assert f"failed: {_shown(page)}: got an HTML page, not a feed" in run.stdout
    assert '"url": "' + _shown(feed) + '"' in run.stderr  # the JSON log line of the check
    post = posts[0]
    assert post["source"] == _shown(feed)
    assert post["link"] == f"{feed}#m1"
    assert post["headimg"] == post["thumbnail"] == f"{feed}#cover"
    assert f'href="{feed}#notes"' in post["body"]
    assert _shown(feed) in stats
    assert (
        "last error (html_page): got an HTML page, not a feed; "
        f"the page points to a feed at {page}#rss"
    ) in stats
    assert {source["url"] for source in report["sources"]} == {_shown(feed), _shown(page)}
    assert _shown(feed) in listed
    assert f"  {_shown(page)}\n" in shown
    assert settings["sources"] == [{"url": _shown(page)}]
    assert f'xmlUrl="{_shown(feed)}"' in opml
    assert removed.stdout.startswith(f"removed source 1 ({_shown(feed)})")


def test_feeds_export_keeps_credentials_only_when_asked(
    server: FeedServer, tmp_path: Path, cli_for: Any
) -> None:
    cli = cli_for(write_config(tmp_path))
    cli("feeds", "add", _secret(server.url("/feed")))

    redacted = cli("feeds", "export")
    backup = cli("feeds", "export", "--with-credentials")

    assert redacted.exit_code == backup.exit_code == 0
    _assert_no_secret(redacted.stdout)
    assert "--with-credentials" in redacted.stderr
    assert f'xmlUrl="{_secret(server.url("/feed"))}"' in backup.stdout
    assert backup.stderr == ""
    (tmp_path / "backup.opml").write_text(backup.stdout, encoding="utf-8")
    elsewhere = Cli(f"sqlite:///{tmp_path / 'other.db'}", write_config(tmp_path))
    assert elsewhere("feeds", "import", str(tmp_path / "backup.opml")).exit_code == 0
    assert elsewhere("feeds", "list", "--json").json()[0]["url"] == _shown(server.url("/feed"))
