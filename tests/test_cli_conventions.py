"""The conventions every ``ingest`` command keeps (docs/cli.md): global options before or after
the name, the environment checked by all, one-line errors, JSON errors under ``--json``, no store
made by a command that reads, a terminal shown only what is for a person, and a quick start."""

from __future__ import annotations

import json
import os
import pty
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from prometheus_client import generate_latest

from ingest import __version__
from ingest.cli.app import app
from ingest.observe.metrics import Metrics
from tests.conftest import CNBETA, Cli, write_config
from tests.feedserver import FeedServer, Reply, Seen, rss

ROOT = Path(__file__).resolve().parent.parent

COMMANDS: list[tuple[str, ...]] = [
    ("run",),
    ("serve",),
    ("healthcheck",),
    ("export", "out"),
    ("stats",),
    ("entries", "list"),
    ("entries", "search", "word"),
    ("entries", "show", "1"),
    ("config", "show"),
    ("db", "upgrade"),
    ("db", "index"),
    ("feeds", "list"),
    ("feeds", "add", "https://example.org/feed.xml"),
    ("feeds", "remove", "1"),
    ("feeds", "import", "list.opml"),
    ("feeds", "export"),
]
READERS: list[tuple[str, ...]] = [
    ("stats",),
    ("entries", "list"),
    ("entries", "search", "word"),
    ("entries", "show", "1"),
    ("export", "out"),
    ("db", "index"),
    ("feeds", "list"),
    ("feeds", "export"),
    ("feeds", "remove", "1"),
]


def ingest(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m ingest ARGS`` in ``cwd``, with no INGEST_* variable but those of ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    return subprocess.run(
        [sys.executable, "-m", "ingest", *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def on_terminal(*args: str, cwd: Path, stderr_too: bool) -> tuple[str, str]:
    """``python -m ingest ARGS`` with stdout (and ``stderr_too``: stderr) on a terminal; what
    the terminal showed, and stderr when it was a pipe."""
    main, child = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "ingest", *args],
        cwd=cwd,
        env={**env, "COLUMNS": "100", "TERM": "dumb"},
        stdout=child,
        stderr=child if stderr_too else subprocess.PIPE,
    )
    os.close(child)
    shown = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    _, err = process.communicate(timeout=120)
    os.close(main)
    return shown.decode(errors="replace"), (err or b"").decode()


def every_command() -> list[tuple[str, ...]]:
    """The path of every command the program has, groups walked."""
    found: list[tuple[str, ...]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        children = getattr(command, "commands", None)
        if children is None:
            found.append(path)
            return
        for name, child in children.items():
            walk(child, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


def test_every_command_takes_db_and_config_after_its_name() -> None:
    root = typer.main.get_command(app)
    for path in every_command():
        command: Any = root
        for name in path:
            command = command.commands[name]
        options = {o for p in command.params for o in getattr(p, "opts", [])}
        assert {"--db", "--config"} <= options, path
    paths = every_command()
    for command in COMMANDS:  # the tables below name real commands
        assert any(command[: len(path)] == path for path in paths), command


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_missing_config_file_is_refused_before_or_after_the_name(
    tmp_path: Path, sqlite_url: str, command: tuple[str, ...]
) -> None:
    missing = str(tmp_path / "missing.toml")
    after = Cli(sqlite_url, None)(*command, "--config", missing)
    before = Cli(sqlite_url, None)("--config", missing, *command)
    for result in (after, before):
        assert result.exit_code == 2, result.stderr
        assert result.stderr == f"error: {missing}: config file not found\n"


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_refuses_an_unknown_ingest_variable(
    sqlite_url: str, command: tuple[str, ...]
) -> None:
    result = Cli(sqlite_url, None)(*command, env={"INGEST_FETCH_TIMOUT": "5s"})
    assert result.exit_code == 2
    assert result.stderr.startswith("error: INGEST_FETCH_TIMOUT: unknown setting; known ")
    assert "INGEST_FETCH_TIMEOUT" in result.stderr
    bad_level = Cli(sqlite_url, None)(*command, env={"INGEST_LOG_LEVEL": "loud"})
    assert bad_level.exit_code == 2
    assert "env INGEST_LOG_LEVEL: 'loud' is not one of" in bad_level.stderr


def test_the_log_level_applies_to_a_command_that_only_opens_the_store(sqlite_url: str) -> None:
    cli = Cli(sqlite_url, None)
    quiet = cli("db", "upgrade", env={"INGEST_LOG_LEVEL": "warning"})
    assert quiet.exit_code == 0
    assert "store_migrated" not in quiet.stderr
    Path(sqlite_url.removeprefix("sqlite:///")).unlink()
    assert "store_migrated" in cli("db", "upgrade").stderr


@pytest.mark.parametrize("command", READERS, ids=" ".join)
def test_a_command_that_reads_makes_no_store_and_says_where_it_looked(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    typo = tmp_path / "ingets.db"
    result = Cli(f"sqlite:///{typo}", None)(*command)
    assert result.exit_code == 1
    assert f"there is no store here (no file {typo})" in result.stderr
    assert "`ingest run` or `ingest db upgrade` makes one" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not typo.exists()


def test_a_plain_path_as_db_is_a_sqlite_file(tmp_path: Path) -> None:
    write_config(tmp_path, [{"url": str(CNBETA)}])
    assert ingest("run", "--db", "mine.db", cwd=tmp_path).returncode == 0
    assert (tmp_path / "mine.db").is_file()
    listed = ingest("--db", "mine.db", "entries", "list", "--json", cwd=tmp_path)
    assert len(json.loads(listed.stdout)) == 1


def test_version_and_python_m_ingest(tmp_path: Path) -> None:
    done = ingest("--version", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, f"feed-ingest {__version__}\n")
    assert "Usage: ingest [OPTIONS] COMMAND" in ingest("--help", cwd=tmp_path).stdout


def test_shell_completion_is_offered(tmp_path: Path) -> None:
    shown = ingest("--help", cwd=tmp_path).stdout
    assert "--install-completion" in shown
    assert "--show-completion" in shown
    script = subprocess.run(
        [sys.executable, "-m", "ingest", "--show-completion", "bash"],
        cwd=tmp_path,
        # The shell is named, not detected from the parent processes (pytest's may be none).
        env={
            **os.environ,
            "SHELL": "/bin/bash",
            "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert script.returncode == 0
    assert "_INGEST_COMPLETE" in script.stdout


@pytest.mark.parametrize(
    ("arguments", "line"),
    [
        (
            ["entries", "list", "--since", "yesterday"],
            "error: --since: 'yesterday' is not a date; use e.g. 2024-06-01",
        ),
        (["entries", "list", "--limit", "abc"], "error: --limit: 'abc' is not a whole number"),
        (["entries", "list", "--limit", "0"], "error: --limit: 0 is below 1"),
        (["entries", "show", "x"], "error: ID: 'x' is not a whole number"),
        (["export", "out", "--layout", "tree"], "error: --layout: 'tree' is not a layout"),
        (["stats", "--nope"], "error: no such option: --nope"),
        (["export", "feeds.opml"], "error: DIR feeds.opml names an OPML file"),
    ],
)
def test_usage_errors_are_one_line_in_our_words(
    sqlite_url: str, arguments: list[str], line: str
) -> None:
    cli = Cli(sqlite_url, None)
    cli("db", "upgrade")
    result = cli(*arguments)
    assert result.exit_code == 2
    assert result.stderr.startswith(line), result.stderr
    assert len(result.stderr.splitlines()) == 1
    for pydantic_words in ("Value error", "Input should be", "valid integer"):
        assert pydantic_words not in result.stderr


def test_export_into_a_file_is_refused(tmp_path: Path, sqlite_url: str) -> None:
    cli = Cli(sqlite_url, None)
    cli("db", "upgrade")
    taken = tmp_path / "notes"
    taken.write_text("mine")
    result = cli("export", str(taken))
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: DIR {taken} is a file; give a folder to write the posts into\n",
    )


def test_help_shows_settings_and_metavars_as_written() -> None:
    shown = Cli("sqlite:///unused.db", None)("serve", "--help").stdout
    assert "[serve] host and [serve] port" in shown
    assert "--db URL" in shown
    assert "--config PATH" in shown
    assert "<str>" not in shown
    assert "<path>" not in shown


def test_errors_under_json_are_json_on_stderr(tmp_path: Path, sqlite_url: str) -> None:
    cli = Cli(sqlite_url, None)
    no_store = cli("entries", "list", "--json")
    assert no_store.stdout == ""
    assert json.loads(no_store.stderr) == {
        "error": no_store_message(sqlite_url),
        "kind": "no_store",
        "exit_code": 1,
    }
    usage = json.loads(cli("entries", "list", "--json", "--limit", "x").stderr)
    assert (usage["kind"], usage["exit_code"]) == ("usage", 2)
    cli("db", "upgrade")
    missing = json.loads(cli("entries", "show", "9", "--json").stderr)
    assert missing["error"].startswith("no post with id 9")


def no_store_message(url: str) -> str:
    path = Path(url.removeprefix("sqlite:///"))
    return (
        f"store {url}: there is no store here (no file {path}); `ingest run` or "
        "`ingest db upgrade` makes one, and --db or INGEST_DB names another"
    )


def test_run_json_is_one_summary_object(tmp_path: Path, cli_for: Any) -> None:
    cli = cli_for(write_config(tmp_path, [{"url": str(CNBETA)}]))
    summary = cli("run", "--json").json()
    assert summary["sources"] == {"ok": 1, "failed": 0, "bugs": 0, "taken_over": 0}
    assert summary["posts"]["new"] == 1
    (checked,) = summary["checked"]
    assert (checked["id"], checked["url"], checked["status"]) == (1, str(CNBETA), "ok")
    assert summary["interrupted"] is None
    again = cli("run", "--json").json()
    assert again["checked"] == []


def test_a_source_has_the_same_keys_in_every_listing(tmp_path: Path, cli_for: Any) -> None:
    cli = cli_for(write_config(tmp_path, [{"url": str(CNBETA), "name": "cnBeta"}]))
    cli("run")
    (listed,) = cli("feeds", "list", "--json").json()
    (health,) = cli("stats", "--json").json()["sources"]
    (checked,) = cli("run", "--all", "--json").json()["checked"]
    for key in ("id", "url"):
        assert listed[key] == health[key] == checked[key]
    assert listed["name"] == health["name"] == "cnBeta"


def test_category_filter_ignores_letter_case(tmp_path: Path, cli_for: Any) -> None:
    cli = cli_for(write_config(tmp_path, [{"url": str(CNBETA), "categories": ["Tech"]}]))
    cli("run")
    assert len(cli("entries", "list", "--json", "--category", "tech").json()) == 1
    assert len(cli("entries", "list", "--json", "--category", "TECH").json()) == 1


def test_empty_results_say_so_on_a_terminal(tmp_path: Path) -> None:
    assert ingest("db", "upgrade", cwd=tmp_path).returncode == 0
    shown, err = on_terminal("entries", "list", cwd=tmp_path, stderr_too=False)
    assert (shown, err) == ("", "no posts match\n")
    piped = ingest("entries", "list", cwd=tmp_path)
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, "", "")


def test_run_on_a_terminal_shows_the_summary_not_a_log_line_per_source(tmp_path: Path) -> None:
    write_config(tmp_path, [{"url": str(CNBETA)}])
    shown, _ = on_terminal("run", cwd=tmp_path, stderr_too=True)
    assert "sources: 1 ok, 0 failed" in shown
    assert "source_processed" not in shown
    assert "store_migrated" not in shown
    loud, _ = on_terminal("run", "--all", "-v", cwd=tmp_path, stderr_too=True)
    assert "source_processed" in loud
    piped = ingest("run", "--all", cwd=tmp_path)
    assert '"event": "source_processed"' in piped.stderr  # a log stream gets every event


def test_serve_on_a_port_in_use_is_one_line_and_exit_2(sqlite_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = Cli(sqlite_url, None)("serve", env={"INGEST_SERVE_PORT": str(port)})
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert len(errors) == 1  # beside the log's JSON lines (the store was made first)
    assert errors[0].startswith(f"error: [serve] host and port: cannot listen on 127.0.0.1:{port}:")
    assert "Traceback" not in result.stderr


def test_metrics_show_every_counter_family_at_zero_from_the_start() -> None:
    text = generate_latest(Metrics().registry).decode()
    for line in (
        'ingest_fetches_total{outcome="ok"} 0.0',
        'ingest_fetches_total{outcome="bug"} 0.0',
        'ingest_posts_total{change="new"} 0.0',
        'ingest_fetch_errors_total{kind="timeout"} 0.0',
        "ingest_bugs_total 0.0",
        "ingest_leases_lost_total 0.0",
    ):
        assert line in text


SHOW_MODULES = (
    "import sys\n"
    "from ingest.cli.launch import main\n"
    "try:\n"
    "    main()\n"
    "finally:\n"
    "    sys.stderr.write('\\nMODULES ' + ' '.join(sorted(sys.modules)))\n"
)


def modules_of(*args: str, cwd: Path, whole: bool = False) -> set[str]:
    """The top-level packages (``whole``: the modules) ``ingest ARGS`` has imported by the
    time it exits."""
    done = subprocess.run(
        [sys.executable, "-c", SHOW_MODULES, *args],
        cwd=cwd,
        env={k: v for k, v in os.environ.items() if not k.startswith("INGEST_")},
        capture_output=True,
        text=True,
        check=False,
    )
    names = done.stderr.rsplit("MODULES ", 1)[1].split()
    return set(names) if whole else {name.split(".")[0] for name in names}


def test_help_and_a_run_with_nothing_due_import_only_what_they_use(tmp_path: Path) -> None:
    assert ingest("run", cwd=tmp_path).returncode == 0  # the seed, checked: nothing is due now
    on_help = modules_of("--help", cwd=tmp_path)
    on_run = modules_of("run", cwd=tmp_path)
    never = {"apscheduler", "prometheus_client", "rich", "httpx", "feedparser", "lxml", "nh3"}
    orm = {"sqlalchemy", "sqlmodel", "alembic", "yaml"}
    assert not on_run & (never | orm), on_run & (never | orm)
    assert not on_help & (never | orm | {"structlog", "storage", "pydantic"})
    assert "sqlite3" in on_run  # the check above sees what it should: the store was read
    assert "sqlalchemy" in modules_of("run", "--all", cwd=tmp_path)  # work to do: the store


def test_a_pass_of_304s_loads_no_parser_and_starts_no_worker_process(tmp_path: Path) -> None:
    """The daemon's and cron's usual pass: every feed unchanged. It needs neither the parsers
    nor the parsing workers, and pays for neither (start-up, memory, a process)."""

    def conditional(seen: Seen) -> Reply:
        if seen.headers.get("if-none-match") == '"v1"':
            return Reply(304, headers={"ETag": '"v1"'})
        return Reply(200, rss("Feed", ("1", "one")), {"ETag": '"v1"'})

    with FeedServer() as server:
        paths = [f"/feed{n}" for n in range(12)]  # enough for a pass with parsing workers
        for path in paths:
            server.routes[path] = conditional
        write_config(
            tmp_path,
            [{"url": server.url(path)} for path in paths],
            fetch={"allow_private_networks": True},
        )
        assert ingest("run", cwd=tmp_path).returncode == 0
        modules = modules_of("run", "--all", cwd=tmp_path, whole=True)
    assert [seen.headers.get("if-none-match") for seen in server.seen[-12:]] == ['"v1"'] * 12
    parsers = {"feedparser", "lxml", "nh3", "frontmatter", "yaml"}
    assert not {name.split(".")[0] for name in modules} & parsers
    assert "multiprocessing.resource_tracker" not in modules
    assert "httpx" in modules  # the check above sees what it should
