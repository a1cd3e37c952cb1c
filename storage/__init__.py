"""The store: every table, query and migration of feed-ingest, behind one facade.

Callers use ``Store`` (opened by ``open_store``) and the types below, never the modules inside:
``storage.store`` states the contract (transactions, UTC, errors, threads and processes).
Inside, one module per table or job: ``models`` (the schema), ``engine`` (opening, migrating,
transactions), ``sources``, ``claims`` (leases), ``apply`` (storing checks: posts and
sightings), ``outbox`` (hook deliveries), ``entries`` (reading posts), ``search`` with
``searchtext``, ``stats``, and ``bulk`` (the hot path's plain SQL).

``storage`` sits at the bottom: from the rest of the program it imports only the vocabulary of
``ingest.types`` and ``ingest.errors`` (``tests/test_layers.py`` checks it).
"""

from storage.entries import PostFilter
from storage.outbox import HookHealth
from storage.sources import ImportResult, Removal, SourceSync
from storage.stats import SourceHealth, StoreStats
from storage.store import Store, open_store

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
]
