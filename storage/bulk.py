"""The hot path's statements as plain SQL, handed to the database driver in batches.

A cold pass writes every post, sighting and source state through here. Run through SQLAlchemy
Core, each row of an ``executemany`` costs about as much Python as SQLite spends storing it
(parameter dictionaries, bind processors, result setup); as plain SQL with value tuples, the
driver's C loop does the work. Everything else in ``storage/`` stays Core.

The SQL is written once, with ``?`` placeholders, in the syntax SQLite and PostgreSQL share
(``ON CONFLICT ... DO UPDATE/NOTHING``); ``Bulk`` swaps in psycopg's ``%s`` on PostgreSQL and
converts values the way the store's column types do (``storage.models.utc_text`` for times on
SQLite, ``json_text`` for JSON, cast on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from storage.models import json_text, utc_text, utc_time

IN_CHUNK = 500
"""Values per ``IN (...)``: far below every backend's limit on bound parameters."""


class Bulk:
    """Plain-SQL statements on ``conn``, inside the caller's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"

    def sql(self, text: str) -> str:
        """``text`` with its ``?`` placeholders in this driver's style; ``?::json`` casts a
        value to JSON on PostgreSQL (SQLite keeps JSON as text)."""
        if self.sqlite:
            return text.replace("?::json", "?")
        return text.replace("?", "%s")

    def time(self, value: datetime | None) -> Any:
        """A UTC time as the store's time columns hold it."""
        return utc_text(value) if self.sqlite else utc_time(value)

    @staticmethod
    def json(value: Any) -> str:
        return json_text(value)

    def many(self, text: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run ``text`` once per row of ``rows`` (one ``executemany``)."""
        if rows:
            self.conn.exec_driver_sql(self.sql(text), list(rows))

    def select_in(self, text: str, values: Sequence[Any], *before: Any) -> Iterable[Sequence[Any]]:
        """Rows of ``text``, whose ``IN (?*)`` takes ``values`` (in chunks), after ``before``."""
        for start in range(0, len(values), IN_CHUNK):
            chunk = values[start : start + IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            query = self.sql(text.replace("?*", marks))
            yield from self.conn.exec_driver_sql(query, (*before, *chunk)).all()
