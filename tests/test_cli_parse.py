"""`ingest parse URL|FILE`: what a source would give, printed, with no store opened or made."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import frontmatter
import pytest

from ingest.publish.render import render_post
from ingest.types import Post
from storage import open_store
from tests.conftest import CNBETA, SEED, Cli, write_config
from tests.feedserver import FeedServer, Reply

DATED = b"""<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Dated</title>
<link>https://dated.example/</link>
<item><title>One</title><guid>one</guid><link>https://dated.example/1</link>
<pubDate>Sat, 04 Jun 2022 07:00:48 GMT</pubDate><description>&lt;p&gt;first&lt;/p&gt;</description>
<category>tag</category></item>
<item><title>Two</title><guid>two</guid><pubDate>Sun, 05 Jun 2022 07:00:48 GMT</pubDate>
<description>&lt;p&gt;second {{ x }}&lt;/p&gt;</description></item>
</channel></rss>"""


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as running:
        yield running


def no_store(tmp_path: Path) -> Cli:
    """A CLI whose store would be ``tmp_path/ingest.db``, allowed to fetch from 127.0.0.1."""
    config = write_config(tmp_path, fetch={"allow_private_networks": True})
    return Cli(f"sqlite:///{tmp_path / 'ingest.db'}", config)


def stores(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.rglob("*.db*"))


def test_a_feed_file_prints_each_post_as_the_store_renders_it(tmp_path: Path) -> None:
    cli = no_store(tmp_path)

    result = cli("parse", str(CNBETA))

    assert result.exit_code == 0, result.stderr
    header, text = result.stdout.split("\n", 1)
    assert header == "==> post 1 of 1 <=="
    (post,) = cli("parse", "--json", str(CNBETA)).json()
    assert frontmatter.loads(text).metadata["categories"] == post["categories"]
    assert text.startswith(f"---\ntitle: '{post['title']}'\n")
    assert stores(tmp_path) == []


def test_a_folder_of_front_matter_posts_gives_its_posts(tmp_path: Path) -> None:
    cli = no_store(tmp_path)
    posts = tmp_path / "posts"
    posts.mkdir()
    (posts / "seed.txt").write_bytes(SEED.read_bytes())
    (posts / "mine.md").write_text("---\ntitle: Mine\n---\n<p>mine</p>\n", encoding="utf-8")

    result = cli("parse", str(posts), "--json")

    assert result.exit_code == 0, result.stderr
    seed = frontmatter.load(SEED)
    assert sorted((p["title"], p["categories"], p["guid"]) for p in result.json()) == [
        ("Mine", [], "mine.md"),
        (seed["title"], seed["categories"], "seed.txt"),
    ]
    assert stores(tmp_path) == []


def test_a_served_feed_gives_exactly_what_a_run_stores(tmp_path: Path, server: FeedServer) -> None:
    server.routes["/feed.xml"] = Reply(200, DATED, {"Content-Type": "application/rss+xml"})
    url = server.url("/feed.xml")
    (tmp_path / "parse").mkdir()
    (tmp_path / "run").mkdir()
    parser = no_store(tmp_path / "parse")

    parsed = parser("parse", url, "--json")
    text = parser("parse", url)

    assert parsed.exit_code == 0, parsed.stderr
    assert parsed.stderr.splitlines() == [f"2 posts from {url}"]
    assert stores(tmp_path) == []
    runner = Cli(
        f"sqlite:///{tmp_path / 'run' / 'ingest.db'}",
        write_config(tmp_path / "run", [{"url": url}], fetch={"allow_private_networks": True}),
    )
    assert runner("run").exit_code == 0
    stored = runner("entries", "list", "--json").json()

    def unstored(post: dict[str, Any]) -> dict[str, Any]:
        return {**post, "id": None, "revision": None}

    assert sorted(parsed.json(), key=lambda p: p["guid"]) == sorted(
        map(unstored, stored), key=lambda p: p["guid"]
    )
    shown = text.stdout.split("\n\n==> post 2 of 2 <==\n")
    assert shown[0] == "==> post 1 of 2 <==\n" + render_post(
        runner_post(runner, stored, "one")
    ).rstrip("\n")


def runner_post(cli: Cli, stored: list[dict[str, Any]], guid: str) -> Post:
    """The stored post with ``guid`` as the store reads it back."""
    (post_id,) = [p["id"] for p in stored if p["guid"] == guid]
    store = open_store(cli.db)
    try:
        found = store.get_post(post_id)
    finally:
        store.close()
    assert found is not None
    return found.post


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        ("/missing.xml", "HTTP 404 Not Found"),
        ("/page.html", "got an HTML page, not a feed; check the URL"),
        ("/broken.xml", "not an RSS, Atom or JSON feed (<unknown>:1:40: not well-formed"),
    ],
)
def test_a_source_that_gives_no_posts_is_one_line_naming_it_and_exit_1(
    tmp_path: Path, server: FeedServer, route: str, reason: str
) -> None:
    server.routes["/page.html"] = Reply(200, b"<html><body>hello</body></html>")
    server.routes["/broken.xml"] = Reply(200, b"<?xml version='1.0'?> <<< not XML")
    url = server.url(route)

    result = no_store(tmp_path)("parse", url)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {url}: ")
    assert reason in result.stderr
    assert result.stderr.count("\n") == 1
    assert stores(tmp_path) == []


def test_an_unreachable_server_and_a_missing_file_are_one_line_and_exit_1(
    tmp_path: Path,
) -> None:
    cli = no_store(tmp_path)
    url = f"http://127.0.0.1:{closed_port()}/feed.xml"

    for source, shown in ((url, url), ("nope.xml", str(Path.cwd() / "nope.xml"))):
        result = cli("parse", source)
        assert result.exit_code == 1
        assert result.stderr.startswith(f"error: {shown}: ")
        assert result.stderr.count("\n") == 1
    assert stores(tmp_path) == []


def test_the_address_guard_of_runs_applies(tmp_path: Path, server: FeedServer) -> None:
    server.routes["/feed.xml"] = Reply(200, DATED)
    cli = Cli(f"sqlite:///{tmp_path / 'ingest.db'}", write_config(tmp_path))

    result = cli("parse", server.url("/feed.xml"))

    assert result.exit_code == 1
    assert "private" in result.stderr or "not public" in result.stderr
    assert server.seen == []


def test_a_scheme_never_read_is_a_usage_error(tmp_path: Path) -> None:
    result = no_store(tmp_path)("parse", "ftp://files.example/feed.xml")

    assert result.exit_code == 2
    assert result.stderr.startswith("error: URL|FILE: 'ftp://files.example/feed.xml': the ftp:")
    assert stores(tmp_path) == []
