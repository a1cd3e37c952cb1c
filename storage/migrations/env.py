"""Alembic's entry point: runs migrations on the connection ``storage.migrate`` hands it."""

from alembic import context
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from storage.migrate import include_name

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    include_name=include_name,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=True,
    transactional_ddl=True,  # SQLite's DDL is transactional too: a failed migration leaves no trace
)
with context.begin_transaction():
    context.run_migrations()
