"""The store's contract on SQLite and PostgreSQL: migrations, atomic checks, idempotence."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, func, inspect, select, text
from sqlmodel import SQLModel

from ingest.errors import StoreError
from ingest.types import Change, SourceSpec, SourceStatus
from storage import Store, apply, open_store
from storage.migrate import current_revision, include_name
from storage.models import SOURCES, PostRow, SightingRow
from storage.revisions import head_revision
from tests.builders import NOW, a_post, a_source, ok, record_check


def count(store: Store, model: type[SQLModel]) -> int:
    with store.database.read() as conn:
        return int(conn.execute(select(func.count()).select_from(model.__table__)).scalar_one())  # type: ignore[attr-defined]


def test_a_new_store_is_at_the_newest_migration_and_matches_the_models(store: Store) -> None:
    assert current_revision(store.database.engine) == head_revision()
    with store.database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []


def test_opening_twice_migrates_once(store_url: str) -> None:
    open_store(store_url).close()
    again = open_store(store_url)
    assert current_revision(again.database.engine) == head_revision()
    again.close()


@pytest.mark.parametrize(
    ("statements", "shown"),
    [
        (["CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT)"], "moz_places"),
        (
            [
                "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)",
                "INSERT INTO alembic_version VALUES ('ae1027a6acf')",
                "CREATE TABLE users (id INTEGER)",
            ],
            "alembic_version, users",
        ),
    ],
    ids=["plain", "alembic"],
)
def test_a_database_of_another_program_is_refused_and_left_alone(
    store_url: str, statements: list[str], shown: str
) -> None:
    engine = create_engine(store_url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))

    try:
        with pytest.raises(StoreError) as refused:
            open_store(store_url).close()
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names()
    finally:
        engine.dispose()

    assert str(refused.value) == (
        f"store {store_url}: is not a feed-ingest store: it holds other tables ({shown}) "
        "and no feed-ingest schema; give the URL of a new file, an empty database or a "
        "feed-ingest store"
    )
    assert sorted(tables) == shown.split(", ")


def test_record_check_stores_posts_and_is_idempotent(store: Store) -> None:
    state = a_source(store)
    posts = [a_post("1", "one"), a_post("2", "two")]

    first = record_check(store, state, posts, ok(state), now=NOW)
    second = record_check(store, state, posts, ok(state), now=NOW)

    assert first == {Change.NEW: 2}
    assert second == {Change.UNCHANGED: 2}
    assert (count(store, PostRow), count(store, SightingRow)) == (2, 2)
    latest, _ = store.list_posts()
    assert latest.post.published == NOW - timedelta(days=1)
    assert latest.post.published.tzinfo is not None
    assert latest.post.categories == ("新媒体",)
    assert store.get_post(latest.id) == latest


def test_a_failure_inside_the_transaction_leaves_the_store_as_before(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = a_source(store)

    def explode(*_: object) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(apply, "save_updates", explode)
    with pytest.raises(RuntimeError):
        record_check(store, state, [a_post("1", "one")], ok(state), now=NOW)

    assert (count(store, PostRow), count(store, SightingRow)) == (0, 0)
    (unchanged,) = store.load_states([state.id])
    assert unchanged.last_checked_at is None


def test_check_state_is_saved(store: Store) -> None:
    state = a_source(store)
    record_check(store, state, [], ok(state), now=NOW)
    (saved,) = store.load_states([state.id])
    assert saved.title == "Feed"
    assert saved.last_checked_at == NOW
    assert saved.next_check_at is not None
    assert saved.next_check_at > NOW
    with store.database.read() as conn:
        status = conn.execute(select(SOURCES.c.last_status)).scalar_one()
    assert status == SourceStatus.OK


def test_apply_sources_adds_updates_and_never_deletes(store: Store) -> None:
    store.apply_sources(
        [SourceSpec(url="https://a.example/f"), SourceSpec(url="https://b.example/f")],
        origin="config",
        now=NOW,
    )
    store.apply_sources(
        [SourceSpec(url="https://a.example/f", name="A", categories=("x",))],
        origin="config",
        now=NOW,
    )

    states = {s.url: s for s in store.load_states()}
    assert set(states) == {"https://a.example/f", "https://b.example/f"}
    assert states["https://a.example/f"].spec.name == "A"
    assert states["https://a.example/f"].spec.categories == ("x",)


def test_a_source_listed_twice_is_one_source_with_the_last_settings(store: Store) -> None:
    url = "https://a.example/f"
    store.apply_sources(
        [SourceSpec(url=url), SourceSpec(url=url, name="A")],
        origin="config",
        now=NOW,
    )
    store.apply_sources(
        [SourceSpec(url=url, name="A"), SourceSpec(url=url, name="B")],
        origin="config",
        now=NOW,
    )

    [state] = store.load_states()
    assert state.spec.name == "B"


def test_concurrent_writers_on_sqlite_wait_instead_of_failing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    stores = [open_store(url) for _ in range(3)]
    states = [a_source(stores[0], f"https://x.example/{i}") for i in range(3)]
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            for round_ in range(20):
                post = a_post(f"{index}-{round_}", f"{index}/{round_}")
                record_check(stores[index], states[index], [post], ok(states[index]), now=NOW)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert count(stores[0], PostRow) == 60
    for store in stores:
        store.close()


def test_sqlite_is_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    with store.database.read() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() >= 5000
    store.close()


def test_a_missing_postgresql_driver_names_the_extra_that_installs_it() -> None:
    blocked = "import sys; sys.modules['psycopg'] = None; "  # as if it were not installed
    script = (
        blocked + "from storage import open_store\n"
        "try:\n    open_store('postgresql+psycopg://postgres@127.0.0.1:5432/test')\n"
        "except Exception as exc:\n    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert "pip install 'feed-ingest[postgres]'" in done.stdout
