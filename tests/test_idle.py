"""``ingest run`` with nothing due answers from the idle mark a pass leaves in a SQLite store,
and never when there is work: a source or a delivery coming due, other settings, a change to
the sources or the outbox by any command or process, a store that needs migrating."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.config import load_settings
from ingest.errors import StoreError
from ingest.pipeline.runner import config_planner, sync_config_sources
from ingest.types import IdleMark, SourceOutcome
from scheduler.driver import run_once
from scheduler.idle import fingerprint, idle_until, is_idle
from scheduler.policy import due_at, is_due
from storage import Store, open_store, read_idle_mark
from tests.builders import a_state
from tests.conftest import CNBETA, SEED, Cli, write_config

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
STATE = a_state(1, "https://x.example/feed")
moments = st.none() | st.integers(-3, 3).map(lambda m: NOW + timedelta(minutes=m))


@given(enabled=st.booleans(), next_check=moments, retry_after=moments)
def test_due_at_is_the_moment_is_due_becomes_true(
    enabled: bool, next_check: datetime | None, retry_after: datetime | None
) -> None:
    state = replace(STATE, enabled=enabled, next_check_at=next_check, retry_after_until=retry_after)
    moment = due_at(state)
    for now in (NOW + timedelta(minutes=m) for m in range(-4, 5)):
        assert is_due(state, now) is (moment is not None and moment <= now)


def test_a_store_is_idle_until_its_first_source_or_delivery_comes_due() -> None:
    states = [
        replace(STATE, next_check_at=NOW + timedelta(minutes=30)),
        replace(STATE, next_check_at=NOW + timedelta(minutes=5)),
        replace(STATE, next_check_at=NOW - timedelta(days=1), enabled=False),
    ]
    assert idle_until(states, None) == NOW + timedelta(minutes=5)
    assert idle_until(states, NOW + timedelta(minutes=1)) == NOW + timedelta(minutes=1)
    assert idle_until(states[2:], None) is None  # nothing comes due by itself


def test_a_mark_holds_for_the_same_settings_until_its_moment() -> None:
    mark = IdleMark(fingerprint="a", until=NOW)
    assert is_idle(mark, "a", NOW - timedelta(seconds=1))
    assert not is_idle(mark, "a", NOW)
    assert not is_idle(mark, "b", NOW - timedelta(seconds=1))
    assert not is_idle(None, "a", NOW)
    assert is_idle(IdleMark(fingerprint="a", until=None), "a", NOW + timedelta(days=999))


FINGERPRINT = "from ingest.config import load_settings; from scheduler.idle import fingerprint; "
FINGERPRINT += "print(fingerprint(load_settings()))"


def test_the_fingerprint_is_the_same_in_every_process(tmp_path: Path) -> None:
    """Sets in the settings (a hook's events and categories) are hashed in a fixed order."""
    write_config(
        tmp_path,
        [{"url": "https://a.example/feed", "categories": ["x", "y", "z"]}],
        hooks=[
            {
                "name": "h",
                "webhook": "https://hook.example/",
                "on": ["new", "updated"],
                "categories": ["p", "q", "r", "s"],
            }
        ],
        filters={"block": ["title:spam", "title:ads"]},
    )
    prints = {
        subprocess.run(
            [sys.executable, "-c", FINGERPRINT],
            cwd=tmp_path,
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(4)
    }
    assert len(prints) == 1, prints


def test_the_fingerprint_changes_with_any_setting(tmp_path: Path) -> None:
    config = write_config(tmp_path, [{"url": "https://a.example/feed"}])
    base = fingerprint(load_settings(config, env={}))
    assert fingerprint(load_settings(config, env={})) == base
    assert fingerprint(load_settings(config, env={"INGEST_FETCH_TIMEOUT": "7"})) != base
    write_config(tmp_path, [{"url": "https://a.example/feed", "interval": "2h"}])
    assert fingerprint(load_settings(config, env={})) != base


def checked(cli: Cli, *args: str, env: dict[str, str] | None = None) -> list[str]:
    """The URLs ``ingest run ARGS`` checked."""
    result = cli("run", "--json", *args, env=env)
    assert result.exit_code == 0, result.stderr
    return sorted(outcome["url"] for outcome in result.json()["checked"])


def test_a_run_after_a_run_finds_nothing_due(elsewhere: Path, sqlite_url: str) -> None:
    cli = Cli(sqlite_url, None)
    assert len(checked(cli)) == 1
    assert checked(cli) == []
    assert cli("run").stdout.startswith("nothing is due")


def test_a_source_added_to_the_config_is_checked_by_the_next_run(
    elsewhere: Path, sqlite_url: str
) -> None:
    config = write_config(elsewhere, [{"url": str(SEED.parent)}])
    cli = Cli(sqlite_url, config)
    assert checked(cli) == [str(SEED.parent)]
    write_config(elsewhere, [{"url": str(SEED.parent)}, {"url": str(CNBETA)}])
    assert checked(cli) == [str(CNBETA)]
    assert checked(cli) == []


def test_sources_from_the_environment_are_checked_when_they_change(
    elsewhere: Path, sqlite_url: str
) -> None:
    cli = Cli(sqlite_url, None)
    assert checked(cli, env={"INGEST_SOURCES": str(CNBETA)}) == [str(CNBETA)]
    assert checked(cli, env={"INGEST_SOURCES": str(CNBETA)}) == []
    both = f"{CNBETA},{SEED.parent}"
    assert checked(cli, env={"INGEST_SOURCES": both}) == [str(SEED.parent)]


def test_a_source_added_by_a_command_is_checked_by_the_next_run(
    elsewhere: Path, sqlite_url: str
) -> None:
    cli = Cli(sqlite_url, None)
    assert cli("feeds", "add", str(CNBETA), "--local").exit_code == 0
    assert checked(cli) == [str(CNBETA)]
    assert cli("feeds", "add", str(SEED.parent), "--local").exit_code == 0
    assert checked(cli) == [str(SEED.parent)]
    assert checked(cli) == []


def test_a_source_is_checked_once_the_moment_of_the_mark_has_come(
    elsewhere: Path, sqlite_url: str
) -> None:
    cli = Cli(sqlite_url, None)
    cli("feeds", "add", str(CNBETA), "--local")
    assert checked(cli) == [str(CNBETA)]
    mark = read_idle_mark(sqlite_url)
    assert mark is not None
    assert mark.until is not None
    assert mark.until > datetime.now(UTC) + timedelta(minutes=4)  # the source's next check
    # Time passes: the source comes due, and the mark says until when the store was idle.
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE sources SET next_check_at = '2024-01-01 00:00:00.000000'")
        conn.execute(
            "INSERT INTO idle_marks (fingerprint, idle_until, deliveries_pending) VALUES (?, ?, 0)",
            (mark.fingerprint, time.time() - 1),
        )
    assert checked(cli) == [str(CNBETA)]
    assert checked(cli) == []


def test_an_unknown_variable_is_refused_when_nothing_is_due(
    elsewhere: Path, sqlite_url: str
) -> None:
    cli = Cli(sqlite_url, None)
    assert cli("run").exit_code == 0
    refused = cli("run", env={"INGEST_FETCH_TIMEOUTT": "3"})
    assert refused.exit_code == 2
    assert "INGEST_FETCH_TIMEOUTT" in refused.stderr


def test_every_change_to_sources_or_deliveries_erases_the_mark(
    elsewhere: Path, sqlite_url: str
) -> None:
    cli = Cli(sqlite_url, None)
    cli("feeds", "add", str(CNBETA), "--local")
    assert cli("run").exit_code == 0
    path = sqlite_url.removeprefix("sqlite:///")
    statements = (
        "UPDATE sources SET next_check_at = NULL",
        "DELETE FROM sources",
        "INSERT INTO hook_deliveries (post_id, revision, hook, event, status, attempts,"
        " next_attempt_at, created_at)"
        " SELECT id, 1, 'h', 'new', 'pending', 0, '2024-01-01', '2024-01-01' FROM posts",
    )
    for statement in statements:
        assert cli("run").exit_code == 0
        assert read_idle_mark(sqlite_url) is not None, statement
        with sqlite3.connect(path) as conn:  # another process, another program
            conn.execute("PRAGMA foreign_keys = OFF")
            conn.execute(statement)
        assert read_idle_mark(sqlite_url) is None, statement


def leave_mark(store: Store) -> None:
    """What the end of ``ingest run`` does, with the built-in config."""
    settings = load_settings(None, env={})
    sync_config_sources(store, settings, datetime.now(UTC))
    store.mark_idle(
        fingerprint(settings),
        hooks=(),
        until=idle_until,
        specs=settings.sources,
        plan=config_planner(settings),
    )


def test_no_store_no_mark(tmp_path: Path) -> None:
    assert read_idle_mark(f"sqlite:///{tmp_path / 'missing.db'}") is None
    assert not (tmp_path / "missing.db").exists()
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    assert read_idle_mark(f"sqlite:///{tmp_path / 'junk.db'}") is None


def test_postgresql_stores_keep_no_mark(store: Store) -> None:
    """Replicas share a PostgreSQL store; a mark there would have no triggers to erase it."""
    leave_mark(store)
    kept = read_idle_mark(store.url)
    if store.url.startswith("sqlite"):
        assert kept is not None
    else:
        assert kept is None
        assert store.database.engine.dialect.name == "postgresql"


def test_a_mark_the_store_refuses_costs_the_run_nothing(
    elsewhere: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mark only saves time: a store too busy to take it (another writer holding it past
    the busy timeout) leaves the run's result and exit code as they were, and a warning."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise StoreError("sqlite:///x", "busy: another process is writing to it")

    monkeypatch.setattr(Store, "mark_idle", refuse)
    cli = Cli(sqlite_url, None)
    result = cli("run", "--json")
    assert result.exit_code == 0, result.stderr
    assert len(result.json()["checked"]) == 1
    assert "idle_mark_not_saved" in result.stderr
    assert read_idle_mark(sqlite_url) is None


def test_a_delivery_due_within_the_runs_delivery_budget_ends_the_idle() -> None:
    """``ingest run`` waits up to ``[delivery] run_budget`` for a retry coming due, so a run
    that starts within the budget of one has work."""
    retry = NOW + timedelta(minutes=10)
    assert idle_until([], retry, delivery_lead_s=30) == retry - timedelta(seconds=30)


def test_hook_secrets_are_left_out_of_the_fingerprint(tmp_path: Path) -> None:
    """A secret decides nothing a pass does, and the store must not hold anything from it."""

    def with_secret(secret: str) -> str:
        hook = {"name": "h", "on": ["new"], "webhook": "https://hook.example/", "secret": secret}
        return fingerprint(load_settings(write_config(tmp_path, hooks=[hook]), env={}))

    assert with_secret("one") == with_secret("two")


def test_a_config_source_removed_during_a_run_is_added_back_by_the_next(
    elsewhere: Path, sqlite_url: str
) -> None:
    """Whatever changes the sources while a pass runs, the mark it leaves must not hide a
    config that no longer matches the store."""
    config = write_config(elsewhere, [{"url": str(CNBETA)}, {"url": str(SEED.parent)}])
    cli = Cli(sqlite_url, config)
    settings = load_settings(config, env={})
    store = open_store(sqlite_url)
    removed: list[int] = []

    def remove_the_other(outcome: SourceOutcome) -> None:
        if not removed:
            other = next(s for s in store.list_sources() if s.id != outcome.source_id)
            store.remove_source(other.id, purge=False)
            removed.append(other.id)

    try:
        asyncio.run(run_once(store, settings, force=True, on_outcome=remove_the_other))
    finally:
        store.close()
    assert removed
    assert len(cli("feeds", "list", "--json").json()) == 1
    assert cli("run").exit_code == 0
    assert len(cli("feeds", "list", "--json").json()) == 2


def test_deliveries_waiting_are_counted_when_nothing_is_due(
    elsewhere: Path, sqlite_url: str
) -> None:
    hook = {"name": "fails", "on": ["new"], "exec": [sys.executable, "-c", "raise SystemExit(3)"]}
    config = write_config(
        elsewhere, [{"url": str(CNBETA)}], hooks=[hook], delivery={"backoff": "1h"}
    )
    cli = Cli(sqlite_url, config)
    first = cli("run", "--json")
    assert first.json()["hooks"]["pending"] == 1
    again = cli("run", "--json")
    assert read_idle_mark(sqlite_url) is not None
    assert again.json()["hooks"] == {
        **first.json()["hooks"],
        "delivered": 0,
        "to_retry": 0,
        "errors": [],
    }
    assert "1 pending" in cli("run").stdout


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE alembic_version SET version_num = '0001'",  # the whole path migrates it
        # A later migration that rebuilds ``sources`` drops its triggers with it: without
        # them a mark could outlive a change.
        "DROP TRIGGER sources_update_ends_idle",
    ],
    ids=["an older schema", "a trigger gone"],
)
def test_a_store_the_mark_cannot_vouch_for_has_none(
    elsewhere: Path, sqlite_url: str, statement: str
) -> None:
    cli = Cli(sqlite_url, None)
    assert cli("run").exit_code == 0
    assert read_idle_mark(sqlite_url) is not None
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
        conn.execute(statement)
    assert read_idle_mark(sqlite_url) is None


def test_the_mark_is_read_from_the_file_the_store_opens(tmp_path: Path) -> None:
    """Store URLs are percent-decoded, as SQLAlchemy reads them."""
    folder = tmp_path / "a b"
    folder.mkdir()
    url = f"sqlite:///{folder}/ingest.db".replace(" ", "%20")
    store = open_store(url)
    try:
        leave_mark(store)
    finally:
        store.close()
    assert (folder / "ingest.db").is_file()
    assert read_idle_mark(url) is not None
