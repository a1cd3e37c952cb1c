"""Opening the database: engine settings per backend, transactions, and migrations on open.

The rest of ``storage`` works through a ``Database``; callers outside it use the ``Store``
facade (``storage.store``), whose docstring states the contract they rely on.

- ``open_database(url)`` returns a ``Database`` whose schema is at the newest migration: a store
  made by an older version is upgraded in place, in one transaction per migration.
- ``Database.write()`` is one transaction that holds the write lock from its first statement
  (SQLite ``BEGIN IMMEDIATE``). A transaction that reads and then writes would otherwise fail
  with "database is locked" at once when another writer is active, whatever the busy timeout.
- ``Database.read()`` is a read-only snapshot; under WAL it never waits for writers.
- SQLite runs in WAL mode with a busy timeout and foreign keys on.
- Every database failure (a damaged file, a lost connection) leaves as a ``StoreError`` naming
  the store, whether met on open or in any later ``read()`` or ``write()``.
- A database holding tables of another program is refused, never migrated into.
- A ``StoreError`` names the store by its URL as shown (``shown_url``): password hidden.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import ConnectionPoolEntry

from ingest.errors import NoStoreError, StoreError
from storage.migrate import current_revision, is_known, upgrade
from storage.models import json_text
from storage.revisions import head_revision

BUSY_TIMEOUT_MS = 30_000
CASEFOLD = "ingest_casefold"
"""A SQL function on every SQLite connection: Python's ``str.casefold``, since SQLite's own
``lower()`` folds ASCII letters only (``PostFilter.category`` compares with it)."""
_BEGIN = "sqlite_begin"
_OWN_TABLES = frozenset({"sources", "posts", "sightings"})


class Database:
    """A database holding sources, posts and sightings: its engine and its transactions."""

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.shown_url = shown_url(url)
        self.engine = engine

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction, committed on success and rolled back on any exception."""
        with _store_errors(self.shown_url, _IN_USE), self.engine.connect() as plain:
            conn = plain.execution_options(**{_BEGIN: "BEGIN IMMEDIATE"})
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A consistent read-only view."""
        with _store_errors(self.shown_url, _IN_USE), self.engine.connect() as conn, conn.begin():
            yield conn

    def close(self) -> None:
        self.engine.dispose()


def open_database(url: str, *, migrate: bool = True, create: bool = True) -> Database:
    """The database at ``url``, migrated to the newest schema unless ``migrate`` is false.

    Raises StoreError with a reason a user can act on (bad URL, missing folder, not a database,
    another program's database, a schema written by a newer feed-ingest); NoStoreError, unless
    ``create``, when there is no store yet (no SQLite file, or a database without our schema),
    before anything is written.
    """
    store = Database(url, _engine(url))
    try:
        if not create:
            _require_store(store)
        if migrate:
            migrate_database(store)
        else:
            with _store_errors(store.shown_url):
                _check_known(store)
    except StoreError:
        store.close()
        raise
    return store


def _require_store(store: Database) -> None:
    """NoStoreError unless ``store`` holds a feed-ingest schema; a SQLite file is looked for
    before connecting, which would create it."""
    path = store.engine.url.database
    if store.is_sqlite and path and path != ":memory:" and not Path(path).is_file():
        where = f"no file {Path(path).resolve()}"
    else:
        with _store_errors(store.shown_url):
            if current_revision(store.engine) is not None:
                return
        where = "the database holds no feed-ingest schema"
    raise NoStoreError(
        store.shown_url,
        f"there is no store here ({where}); `ingest run` or `ingest db upgrade` makes one, "
        "and --db or INGEST_DB names another",
    )


def migrate_database(store: Database) -> tuple[str | None, str | None]:
    """Bring ``store`` to the newest schema; its revisions before and after (equal: no change)."""
    with _store_errors(store.shown_url):
        _check_known(store)
        return upgrade(store.engine)


def _check_known(store: Database) -> None:
    """Refuse a store written by a newer feed-ingest, or a database that is not ours at all.

    A database without our revision is ours to create only when it is empty: migrating into
    another program's file would mix our tables into its data. An unknown revision is a newer
    feed-ingest's only when our tables are there (other programs use Alembic too).
    """
    revision = current_revision(store.engine)
    if revision is not None and is_known(revision):
        return
    with store.engine.connect() as conn:
        tables = sorted(inspect(conn).get_table_names())
    # Read again after the tables: another process may have just committed its first migration
    # (tables and revision at once), and the tables alone would then look like a stranger's.
    revision = current_revision(store.engine)
    if revision is not None and is_known(revision):
        return
    foreign = bool(tables) if revision is None else not _OWN_TABLES.issubset(tables)
    if foreign:
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise StoreError(
            store.shown_url,
            f"is not a feed-ingest store: it holds other tables ({shown}) and no feed-ingest "
            "schema; give the URL of a new file, an empty database or a feed-ingest store",
        )
    if revision is not None:
        raise StoreError(
            store.shown_url,
            f"its schema is at revision {revision}, newer than this feed-ingest knows "
            f"(newest: {head_revision()}); upgrade feed-ingest to use it",
        )


def shown_url(url: str) -> str:
    """The store's URL fit to print, its password hidden and its user name (a database role)
    kept.

    SQLAlchemy's own rendering hides the password: it knows where the password of its URLs
    ends. A query parameter drivers read a secret from (libpq's ``?password=`` and
    ``?sslpassword=``, a token or key) is masked too. A URL SQLAlchemy cannot parse (a port
    that is not a number) is taken apart by ``urlsplit`` instead, to the same effect.
    """
    parts = urlsplit(url)
    try:
        shown = make_url(url).set(query={}).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        user, at, host = parts.netloc.rpartition("@")
        if at and ":" in user:
            user = f"{user.partition(':')[0]}:{_HIDDEN}"
        shown = urlunsplit(parts._replace(netloc=user + at + host, query=""))
    if not parts.query:
        return shown
    return f"{shown}?{'&'.join(_masked(parameter) for parameter in parts.query.split('&'))}"


_HIDDEN = "***"
_SECRET_PARAMETER = re.compile(r"pass|secret|token|key", re.IGNORECASE)


def _masked(parameter: str) -> str:
    """One ``name=value`` of a query, its value hidden when the name says it is a secret."""
    name, equals, value = parameter.partition("=")
    return f"{name}={_HIDDEN}" if equals and value and _SECRET_PARAMETER.search(name) else parameter


_OPENING = "cannot open"
_IN_USE = "cannot be read or written"


@contextmanager
def _store_errors(url: str, failed: str = _OPENING) -> Iterator[None]:
    """The database's failures as our StoreError; ``failed`` says what could not be done.

    A failure of the database or its driver (OperationalError, "file is not a database", a
    lost connection, a constraint) and a connection pool that gives none in time are the
    store's; anything else (a value the store refuses, like a naive datetime) is a bug and
    passes through as it is.
    """
    try:
        yield
    except DBAPIError as exc:
        raise StoreError(url, f"{failed}: {exc.orig}") from exc
    except PoolTimeout as exc:
        raise StoreError(url, f"{failed}: {exc}") from exc


def _engine(url: str) -> Engine:
    try:
        if url.startswith("sqlite"):
            engine = _sqlite_engine(url)
        else:
            engine = create_engine(url, json_serializer=json_text, pool_pre_ping=True)
    except ImportError as exc:
        raise StoreError(
            shown_url(url),
            f"its database driver is not installed ({exc}); for PostgreSQL install "
            "feed-ingest with its postgres extra: pip install 'feed-ingest[postgres]'",
        ) from exc
    except (ArgumentError, ValueError) as exc:
        raise StoreError(
            shown_url(url),
            f"not a usable database URL ({exc}); use e.g. sqlite:///ingest.db or "
            "postgresql+psycopg://user@host/db",
        ) from exc
    return engine


def _casefold(value: object) -> object:
    return value.casefold() if isinstance(value, str) else value


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(
        url,
        json_serializer=json_text,
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
    )
    database = engine.url.database
    if not database or database == ":memory:":
        raise ValueError("an in-memory database would vanish when the command ends")
    folder = Path(database).expanduser().resolve().parent
    if not folder.is_dir():
        raise ValueError(f"folder {folder} does not exist")

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # pysqlite's own transaction handling is off, so ours (below) decides how BEGIN reads.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # WAL with synchronous=NORMAL never corrupts; a power cut may undo the last commits,
        # which the next pass simply fetches again.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        dbapi_connection.create_function(CASEFOLD, 1, _casefold, deterministic=True)

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get(_BEGIN, "BEGIN"))

    return engine
