"""The store: every table, query and migration of feed-ingest, behind one facade.

Callers use ``Store`` (opened by ``open_store``) and the types below, never the modules inside:
``storage.store`` states the contract (transactions, UTC, errors, threads and processes).
Inside, one module per table or job: ``models`` (the schema), ``engine`` (opening, migrating,
transactions), ``sources``, ``claims`` (leases), ``apply`` (storing checks: posts and
sightings), ``outbox`` (hook deliveries), ``entries`` (reading posts), ``search`` with
``searchtext``, ``stats``, ``bulk`` (the hot path's plain SQL), and ``idle`` (the idle mark,
read without SQLAlchemy).

``storage`` sits at the bottom: from the rest of the program it imports only the vocabulary of
``ingest.types`` and ``ingest.errors`` (``tests/test_layers.py`` checks it).
"""

from typing import TYPE_CHECKING, Any

from storage.idle import read_idle_mark

if TYPE_CHECKING:
    from storage.entries import PostFilter
    from storage.outbox import HookHealth
    from storage.sources import ImportResult, Removal, SourceSync
    from storage.stats import SourceHealth, StoreStats
    from storage.store import Store, open_store

_HOMES = {
    "HookHealth": "storage.outbox",
    "ImportResult": "storage.sources",
    "PostFilter": "storage.entries",
    "Removal": "storage.sources",
    "SourceHealth": "storage.stats",
    "SourceSync": "storage.sources",
    "Store": "storage.store",
    "StoreStats": "storage.stats",
    "open_store": "storage.store",
}


def __getattr__(name: str) -> Any:
    """Everything but ``read_idle_mark`` loads SQLAlchemy, so it is imported when first
    asked for: a ``run`` with nothing due reads the idle mark and nothing else."""
    if name not in _HOMES:
        raise AttributeError(f"module 'storage' has no attribute {name!r}")
    from importlib import import_module  # noqa: PLC0415

    return getattr(import_module(_HOMES[name]), name)


__all__ = [
    "HookHealth",
    "ImportResult",
    "PostFilter",
    "Removal",
    "SourceHealth",
    "SourceSync",
    "Store",
    "StoreStats",
    "open_store",
    "read_idle_mark",
]
