"""Whether ``ingest run`` has anything to do, decided before the store's ORM is loaded.

A cron job that runs ``ingest run`` every few minutes mostly finds nothing due, and would spend
most of its time importing the SQL toolkit to learn so. So every pass ends by leaving an idle
mark in a SQLite store (``Store.mark_idle``): the fingerprint of the settings it ran with and
the moment its first source or hook delivery comes due. The next ``ingest run`` with the same
settings, before that moment, reads the mark with the standard library alone and prints the
empty summary. The store erases the mark whenever a source or a delivery changes, by any command
or process (``storage.idle``), so a mark never outlives what it says.

Pure: the clock comes in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from hashlib import sha256

from ingest import __version__
from ingest.config import Settings
from ingest.types import IdleMark, SourceState
from scheduler.policy import due_at


def fingerprint(settings: Settings) -> str:
    """The settings (and the program's version) as a hash: equal exactly when a pass would
    see the same sources, hooks and rules. Sets are hashed sorted, so every process agrees;
    hook secrets are left out, since they decide nothing a pass does and the hash is kept in
    the store."""
    document = json.dumps(
        _without_secrets(asdict(settings)), default=_plain, sort_keys=True, ensure_ascii=False
    )
    return sha256(f"{__version__}\n{document}".encode()).hexdigest()


def _without_secrets(value: object) -> object:
    if isinstance(value, dict):
        return {key: _without_secrets(item) for key, item in value.items() if key != "secret"}
    if isinstance(value, list | tuple):
        return [_without_secrets(item) for item in value]
    return value


def _plain(value: object) -> object:
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def idle_until(
    states: Sequence[SourceState],
    first_delivery: datetime | None,
    *,
    delivery_lead_s: float = 0.0,
) -> datetime | None:
    """When a store holding ``states``, whose first pending delivery is due at
    ``first_delivery``, next has work for a pass; None when nothing comes due by itself.

    ``ingest run`` waits up to ``[delivery] run_budget`` for deliveries coming due, so one is
    work for a pass that starts ``delivery_lead_s`` (that budget) before it."""
    moments = [moment for state in states if (moment := due_at(state)) is not None]
    if first_delivery is not None:
        moments.append(first_delivery - timedelta(seconds=delivery_lead_s))
    return min(moments, default=None)


def is_idle(mark: IdleMark | None, fingerprint: str, now: datetime) -> bool:
    """Whether a pass at ``now`` with settings ``fingerprint`` would find nothing to do."""
    if mark is None or mark.fingerprint != fingerprint:
        return False
    return mark.until is None or now < mark.until
