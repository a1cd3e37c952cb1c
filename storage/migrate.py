"""Schema migrations with Alembic: append-only revisions in ``storage/migrations/versions``.

Every store is brought to the newest revision when it is opened, each revision in its own
transaction, so a store written by an older version keeps working with a newer one. Revisions
are never edited once released; a change is always a new revision.
"""

from __future__ import annotations

from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

log = structlog.get_logger("storage.migrate")

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    """The newest revision this code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the store is at; None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the store to ``revision`` (default: the newest); a no-op when it is there."""
    before = current_revision(engine)
    if revision == "head" and before == head_revision():
        return
    config = alembic_config()
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        conn.commit()
    log.info("store_migrated", from_revision=before, to_revision=current_revision(engine))
