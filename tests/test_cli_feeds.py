"""``ingest feeds`` and ``ingest entries search`` as a user meets them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CNBETA, SEED, Cli, write_config
from tests.feedserver import FeedServer, Reply, rss
from tests.test_opml import NESTED

SEED_TITLE = "Nature 证实：学术界刮起离职潮 大批学者涌向工业界"


@pytest.fixture
def cli(tmp_path: Path, cli_for: Any) -> Cli:
    result: Cli = cli_for(write_config(tmp_path))
    return result


def opml_body(text: str) -> str:
    """The document without its creation date, which differs between two exports."""
    return "\n".join(line for line in text.splitlines() if "<dateCreated>" not in line)


def test_feeds_add_validates_and_reports_as_json(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    added = cli(
        "feeds",
        "add",
        "https://a.example/f",
        "--name",
        "A",
        "--category",
        "科技",
        "--category",
        "AI",
        "--interval",
        "2h",
        "--json",
    ).json()
    assert {k: added[k] for k in ("id", "url", "name", "categories", "interval", "origin")} == {
        "id": 1,
        "url": "https://a.example/f",
        "name": "A",
        "categories": ["科技", "AI"],
        "interval": "2h",
        "origin": "cli",
    }
    again = cli("feeds", "update", "1", "--interval", "30m", "--json").json()
    assert (again["name"], again["categories"], again["interval"]) == ("A", ["科技", "AI"], "30m")

    monkeypatch.chdir(tmp_path)
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "local.xml").write_bytes(CNBETA.read_bytes())
    local = cli("feeds", "add", "feeds/local.xml", "--local", "--json").json()
    assert local["url"] == str(tmp_path / "feeds" / "local.xml")

    listed = cli("feeds", "list", "--json").json()
    assert [s["url"] for s in listed] == ["https://a.example/f", local["url"]]
    assert "2   cli" not in cli("feeds", "list").stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["javascript:alert(1)"], "URL: 'javascript:alert(1)': the javascript: scheme is not"),
        (["https://"], "URL: 'https://' has no host name"),
        (
            ["http://0177.0.0.1/feed"],
            "URL: 'http://0177.0.0.1/feed': 0177.0.0.1 is a legacy spelling of the IPv4 address "
            "127.0.0.1; write 127.0.0.1 if that is what you mean",
        ),
        (["https://0x7f.1:8080/"], "0x7f.1 is a legacy spelling of the IPv4 address 127.0.0.1"),
        (["https://a.example/\x1b[2Jf"], "URL: 'https://a.example/\\x1b[2Jf' contains control"),
        (["https://a.example/f", "--interval", "often"], '--interval: "often" is not a duration'),
        (
            ["feeds/local.xml"],
            "URL: 'feeds/local.xml' is not an http(s) URL, nor a file or folder (those need",
        ),
        (["not a url"], "URL: 'not a url' is not an http(s) URL, nor a file or folder"),
        (["3"], "URL: '3' is not an http(s) URL"),
        (["https://exa mple.org/feed"], "URL: 'https://exa mple.org/feed' is not a valid URL"),
        (["/no/such/feed.xml", "--local"], "URL: /no/such/feed.xml: no such file or folder"),
        (
            ["https://a.example/f", "--interval", "1s"],
            "--interval: 1s is shorter than [schedule] min_interval (5m)",
        ),
        (
            ["file:///etc/shadow"],
            "URL: 'file:///etc/shadow' is a local file or folder; add --local",
        ),
        (["https://a.example/f", "--name", " "], "--name: is empty"),
    ],
)
def test_feeds_add_refuses_bad_input_with_exit_2(
    cli: Cli, arguments: list[str], message: str
) -> None:
    cli("db", "upgrade")
    result = cli("feeds", "add", *arguments)
    assert (result.exit_code, result.stdout) == (2, "")
    assert message in result.stderr
    assert cli("feeds", "list", "--json").json() == []


def test_opml_round_trip_through_the_cli_with_nested_folders(
    tmp_path: Path, sqlite_url: str
) -> None:
    source = tmp_path / "in.opml"
    source.write_text(NESTED, encoding="utf-8")
    first = Cli(sqlite_url, None)

    imported = first("feeds", "import", str(source), "--json").json()
    exported = first("feeds", "export").stdout
    (tmp_path / "out.opml").write_text(exported, encoding="utf-8")
    second = Cli(f"sqlite:///{tmp_path / 'second.db'}", None)
    second("feeds", "import", str(tmp_path / "out.opml"))

    assert len(imported["added"]) == 4
    assert imported["skipped"] == [
        {"url": "https://top.example/feed", "reason": "repeated in the file"}
    ]
    listed = second("feeds", "list", "--json").json()
    assert [(s["url"], s["categories"]) for s in listed] == [
        ("https://top.example/feed", []),
        ("https://cnbeta.example/rss", ["新媒体"]),
        ("https://deep.example/atom", ["新媒体", "Tech"]),
        ("https://same.example/f", ["新媒体", "Tech"]),
    ]
    assert opml_body(second("feeds", "export").stdout) == opml_body(exported)
    assert second("feeds", "import", str(tmp_path / "out.opml")).stdout.endswith(
        "0 added, 4 skipped\n"
    )


@pytest.mark.parametrize(
    "document",
    [
        "<opml><body><outline xmlUrl='https://new.example/f'/><outline",
        "<opml><body><outline xmlUrl='https://new.example/f'/>"
        "<outline xmlUrl='gopher://old.example/'/></body></opml>",
        "<opml><body><outline xmlUrl='https://new.example/f'/>"
        "<outline xmlUrl='file:///etc/passwd'/></body></opml>",
    ],
    ids=["truncated", "one-bad-url", "a-local-file"],
)
def test_a_broken_opml_import_changes_nothing(cli: Cli, tmp_path: Path, document: str) -> None:
    cli("feeds", "add", "https://kept.example/f")
    before = cli("feeds", "list", "--json").json()
    path = tmp_path / "broken.opml"
    path.write_text(document, encoding="utf-8")

    result = cli("feeds", "import", str(path))

    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}: ")
    assert cli("feeds", "list", "--json").json() == before


IN_1_GIB = (
    "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
    "sys.argv[0] = 'ingest'; from ingest.cli.launch import main; main()"
)
"""``python -c IN_1_GIB ARGS...``: ``ingest ARGS...`` in 1 GiB of address space, so a blow-up
fails fast instead of eating the machine."""


def test_an_opml_file_of_deeply_nested_folders_is_refused_fast_in_bounded_memory(
    tmp_path: Path, sqlite_url: str
) -> None:
    # 1.2 MB: 5,000 folders, one in another, around 40,000 feeds. Each feed inheriting every
    # folder as a category would be 200 million categories (gigabytes of memory and of JSON).
    folders = 5000
    document = (
        "<opml><body>\n"
        + "".join(f'<outline text="{n}">' for n in range(folders))
        + "".join(f'<outline xmlUrl="http://f.example/{n}"/>' for n in range(40_000))
        + "</outline>" * folders
        + "</body></opml>"
    )
    path = tmp_path / "nested.opml"
    path.write_text(document, encoding="utf-8")

    done = subprocess.run(
        [sys.executable, "-c", IN_1_GIB, "--db", sqlite_url, "feeds", "import", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.startswith(f"error: {path}: line 2: outlines are nested more than ")
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()  # nothing was made


def test_importing_a_missing_file_exits_2(cli: Cli, tmp_path: Path) -> None:
    result = cli("feeds", "import", str(tmp_path / "none.opml"))
    assert result.exit_code == 2
    assert "none.opml: cannot be read: No such file or directory" in result.stderr


def test_feeds_remove_by_url_keeps_or_purges_posts(tmp_path: Path, cli_for: Any) -> None:
    cli = cli_for(write_config(tmp_path, [{"url": str(SEED)}]))
    cli("run")

    kept = cli("feeds", "remove", str(SEED), "--json")
    assert (kept.exit_code, kept.json()["posts_kept"], kept.json()["posts_deleted"]) == (0, 1, 0)
    assert "the config still lists this source" in kept.stderr
    assert cli("entries", "list", "--json").json()[0]["source"] == ""

    cli("run")
    (source,) = cli("feeds", "list", "--json").json()
    purged = cli("feeds", "remove", str(source["id"]), "--purge")
    assert purged.stdout.startswith(f"removed source {source['id']} ({SEED}): 1 posts deleted")
    assert cli("entries", "list", "--json").json() == []

    unknown = cli("feeds", "remove", "https://never.example/")
    assert unknown.exit_code == 1
    assert "no source 'https://never.example/'" in unknown.stderr


def test_entries_search_finds_the_seed_by_its_chinese_words(tmp_path: Path, cli_for: Any) -> None:
    cli = cli_for(write_config(tmp_path, [{"url": str(SEED)}]))
    cli("run")

    assert cli("entries", "search", "离职潮").stdout.rstrip().endswith(SEED_TITLE)
    found = cli("entries", "search", "学术", "--json").json()
    assert [p["title"] for p in found] == [SEED_TITLE]
    assert cli("entries", "search", "nothing-like-this", "--json").json() == []
    empty = cli("entries", "search", " ")
    assert (empty.exit_code, empty.stderr) == (
        2,
        "error: QUERY is empty: give a word or phrase to look for\n",
    )


def test_one_feed_in_three_spellings_is_one_source_and_a_repeat_names_it(cli: Cli) -> None:
    first = cli("feeds", "add", "https://EXAMPLE.org/feed", "--json").json()
    assert first["url"] == "https://example.org/feed"

    for spelling in ("https://example.org:443/feed", "https://example.org/feed#x"):
        again = cli("feeds", "add", spelling)
        assert again.exit_code == 1
        assert again.stderr == (
            f"error: {spelling!r} is already stored as source 1 (https://example.org/feed); "
            "`ingest feeds update 1` changes it\n"
        )
    assert [s["url"] for s in cli("feeds", "list", "--json").json()] == [first["url"]]


def test_an_opml_file_repeating_a_feed_in_another_spelling_adds_it_once(
    cli: Cli, tmp_path: Path
) -> None:
    cli("feeds", "add", "https://example.org/feed")
    document = tmp_path / "subs.opml"
    document.write_text(
        "<opml><body><outline xmlUrl='https://EXAMPLE.org:443/feed'/>"
        "<outline xmlUrl='https://new.example/f#a'/><outline xmlUrl='https://new.example/f'/>"
        "</body></opml>",
        encoding="utf-8",
    )

    result = cli("feeds", "import", str(document))

    assert result.stdout.splitlines() == [
        "added source 2: https://new.example/f",
        "skipped https://example.org/feed: already stored as source 1",
        "skipped https://new.example/f: repeated in the file",
        "1 added, 2 skipped",
    ]


def test_feeds_update_changes_only_what_is_given_and_refuses_config_sources(
    tmp_path: Path, cli_for: Any
) -> None:
    cli = cli_for(write_config(tmp_path, [{"url": str(SEED)}]))
    cli("feeds", "add", "https://a.example/f", "--name", "A", "--category", "x")
    cli("run")

    changed = cli(
        "feeds", "update", "https://a.example/f", "--interval", "2h", "--no-comments",
        "--max-body", "4MiB", "--category", "y", "--json",
    ).json()  # fmt: skip

    assert {k: changed[k] for k in ("name", "categories", "interval", "comments", "max_body")} == {
        "name": "A",
        "categories": ["y"],
        "interval": "2h",
        "comments": False,
        "max_body": 4 * 1024 * 1024,
    }
    too_often = cli("feeds", "update", "1", "--interval", "10s")
    assert (too_often.exit_code, too_often.stdout) == (2, "")
    assert "shorter than [schedule] min_interval" in too_often.stderr
    from_config = cli("feeds", "update", str(SEED), "--name", "Seeds")
    assert from_config.exit_code == 2
    assert "source 2: comes from the config file" in from_config.stderr
    unknown = cli("feeds", "update", "99", "--name", "x")
    assert (unknown.exit_code, unknown.stderr) == (
        1,
        "error: no source '99'; `ingest feeds list` shows them\n",
    )


def test_disable_enable_and_a_gone_feed_brought_back_by_reset_errors(
    tmp_path: Path, cli_for: Any
) -> None:
    with FeedServer() as server:
        server.routes["/f"] = Reply(410)
        cli = cli_for(write_config(tmp_path, fetch={"allow_private_networks": True}))
        cli("feeds", "add", server.url("/f"))
        cli("feeds", "add", str(CNBETA), "--local")

        assert cli("run").exit_code == 1  # 410 Gone disables source 1
        refused = cli("run", "1")
        assert refused.exit_code == 1
        assert refused.stderr.startswith("error: source 1 (")
        assert "is disabled: " in refused.stderr
        assert refused.stderr.count("\n") == 1

        server.routes["/f"] = Reply(200, rss("F", ("1", "back again")))
        reset = cli("feeds", "reset-errors", "1")
        assert reset.stdout == f"reset the errors of source 1: {server.url('/f')}\n"
        back = cli("run", "1")
        assert back.exit_code == 0
        assert "sources: 1 ok, 0 failed" in back.stdout

        assert cli("feeds", "disable", "2").stdout.startswith("disabled source 2:")
        assert "disabled" in cli("feeds", "list").stdout.splitlines()[1]
        assert cli("run", "--all").stdout.count("sources: 1 ok") == 1
        assert cli("feeds", "enable", str(CNBETA)).stdout == f"enabled source 2: {CNBETA}\n"
        listed = cli("feeds", "list", "--json").json()
        assert [(s["enabled"], s["disabled_reason"]) for s in listed] == [(True, None)] * 2
