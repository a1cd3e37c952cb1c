"""Schema migrations with Alembic: append-only revisions in ``storage/migrations/versions``.

Every store is brought to the newest revision when it is opened, each revision in its own
transaction, so a store written by an older version keeps working with a newer one. Revisions
are never edited once released; a change is always a new revision.

On PostgreSQL, where several replicas may start at once, migrating holds an advisory lock: the
first replica migrates, the others wait and then find nothing left to do.

Alembic itself is only loaded when a store needs migrating: checking that a store is current
reads one row, and every command opens a store (Alembic costs 10 MB and a tenth of a second).
``storage.revisions`` lists the revisions so that this check needs no Alembic.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import Connection, Engine, inspect, text

from storage.models import SEARCH_INDEX
from storage.revisions import REVISIONS, head_revision

log = structlog.get_logger("storage.migrate")

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_KEY = 0x1D6E57  # any constant; names this program's migration lock among advisory locks


def alembic_config() -> Config:
    from alembic.config import Config  # noqa: PLC0415  (see the module docstring)

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def current_revision(bind: Engine | Connection) -> str | None:
    """The revision the store is at; None for an empty database. Given a connection, read in
    its transaction."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return current_revision(conn)
    if not inspect(bind).has_table("alembic_version"):
        return None
    version: str | None = bind.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return version


def is_known(revision: str | None) -> bool:
    """Whether this code can read a store at ``revision`` (None: an empty database)."""
    return revision is None or revision in REVISIONS


def include_name(name: str | None, type_: str, _parents: object) -> bool:
    """Alembic's filter: the search index is kept by migrations but not described by models.

    Without it, comparing models with the database would report ``posts_fts`` (and SQLite's
    FTS5 shadow tables) as tables the models lack.
    """
    if type_ == "table" and name:
        return name != SEARCH_INDEX and not name.startswith(f"{SEARCH_INDEX}_")
    return True


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Bring the store to ``revision`` (default: the newest); the revisions before and after.

    A no-op when the store is there already. The caller checks ``is_known`` first: Alembic
    cannot move a store written by a newer version.
    """
    before = current_revision(engine)
    if revision == "head" and before == head_revision():
        return before, before
    from alembic import command  # noqa: PLC0415  (see the module docstring)

    with _migration_lock(engine):
        before = current_revision(engine)  # another process may have migrated while we waited
        config = alembic_config()
        with engine.connect() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
            conn.commit()
    after = current_revision(engine)
    if after != before:
        log.info("store_migrated", from_revision=before, to_revision=after)
    return before, after


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({_LOCK_KEY})")
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_LOCK_KEY})")
