"""The idle mark (``scheduler.idle``): one row in ``idle_marks`` saying which settings the last
pass ran with and when the store next has work.

A mark is kept in SQLite stores only. Triggers (migration 0011) erase it in the transaction of
any change to ``sources`` or ``hook_deliveries``, whoever makes it (a command, the daemon,
another program), so a mark that is there describes the store as it is. PostgreSQL stores keep
none: their replicas run as daemons, which never ask.

``read_idle_mark`` uses the standard library's ``sqlite3`` alone: a ``run`` with nothing due
must not pay for importing SQLAlchemy to learn that.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from ingest.types import IdleMark
from storage.revisions import head_revision

if TYPE_CHECKING:
    from sqlalchemy import Connection

_SQLITE = "sqlite:///"
TRIGGERS = tuple(
    f"{table}_{change}_ends_idle"
    for table in ("sources", "hook_deliveries")
    for change in ("insert", "update", "delete")
)
"""Made by migration 0011. A migration that rebuilds one of those tables drops its triggers;
without every one of them a mark could outlive a change, so none is trusted."""
_READ = (
    "SELECT (SELECT version_num FROM alembic_version),"
    " (SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN (?, ?, ?, ?, ?, ?)),"
    " fingerprint, idle_until, deliveries_pending FROM idle_marks"
)


def read_idle_mark(url: str) -> IdleMark | None:
    """The mark of the SQLite store at ``url``; None when there is none to trust: no such
    file, not our store, a schema other than the newest (a pass migrates it), a trigger
    missing, or no mark."""
    if not url.startswith(_SQLITE) or "?" in url:
        return None
    path = unquote(url.removeprefix(_SQLITE))  # as SQLAlchemy reads the URL
    if not Path(path).is_file():
        return None
    try:
        with closing(sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=1)) as conn:
            rows = conn.execute(_READ, TRIGGERS).fetchall()
    except sqlite3.Error:
        return None
    if len(rows) != 1:
        return None
    revision, triggers, fingerprint, until, pending = rows[0]
    if revision != head_revision() or triggers != len(TRIGGERS):
        return None
    moment = None if until is None else datetime.fromtimestamp(until, UTC)
    return IdleMark(fingerprint=fingerprint, until=moment, deliveries_pending=pending)


def write_idle_mark(conn: Connection, mark: IdleMark) -> None:
    """Replace the mark, in the caller's write transaction."""
    until = None if mark.until is None else mark.until.timestamp()
    clear_idle_mark(conn)
    conn.exec_driver_sql(
        "INSERT INTO idle_marks (fingerprint, idle_until, deliveries_pending) VALUES (?, ?, ?)",
        (mark.fingerprint, until, mark.deliveries_pending),
    )


def clear_idle_mark(conn: Connection) -> None:
    conn.exec_driver_sql("DELETE FROM idle_marks")
