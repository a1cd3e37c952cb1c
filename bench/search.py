"""``entries search`` latency over a store of a million posts.

``python -m bench.search [--posts N] [--rounds R] [--json FILE]``

The store is generated fast and cached: it is created through ``storage.open_store`` (so
the real schema's migrations make it), its sources added through ``Store.apply_sources``, then posts
and their sightings are bulk-inserted with ``executemany`` on one SQLite connection and put on
the search backlog, which the first run indexes (``Store.index_backlog``, timed
apart). Posts are
``bench.corpus`` items (~3 KB of mixed Chinese and English HTML, real content hashes); the rare
term ``RARE_TERM`` is in ``RARE_POSTS`` of them. The file is kept under ``bench/.cache/``, named
by its parameters and ``GENERATOR_VERSION``, so reruns only open it; opening runs any newer
migration on it (a search index added later is built then, once).

The benchmark calls ``Store.search_posts(query, limit=20)`` for each query of
``QUERIES`` (English words, Chinese words of 2 and of 3+ characters, a rare term): once to warm
up, then ``rounds`` times, and reports p50 and p95 over all timed calls.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import random
import sqlite3
import statistics
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from bench.corpus import AUTHORS, SEED, SITE, item_body, item_title
from ingest.identity import content_hash
from ingest.types import SourceSpec
from storage import Store, open_store

CACHE = Path(__file__).resolve().parent / ".cache"
GENERATOR_VERSION = 2
"""Bump when the generated content or layout changes, so cached stores are rebuilt."""
POSTS = 1_000_000
SOURCES = 1_000
BATCH = 10_000
RARE_TERM = "quokkanomics"
RARE_POSTS = 10
QUERIES: tuple[tuple[str, str], ...] = (
    ("English word", "privacy"),
    ("English word", "satellite"),
    ("Chinese, 2 characters", "芯片"),
    ("Chinese, 2 characters", "隐私"),
    ("Chinese, 3+ characters", "光刻机"),
    ("Chinese, 3+ characters", "人工智能"),
    ("rare term", RARE_TERM),
)
_STAMP = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy writes a DateTime on SQLite
_NOW = datetime(2024, 6, 5, tzinfo=UTC)


def store_path(posts: int, *, seed: int = SEED, cache: Path = CACHE) -> Path:
    return cache / f"search-{posts}posts-{SOURCES}sources-seed{seed}-v{GENERATOR_VERSION}.db"


def ensure_store(posts: int, *, seed: int = SEED, cache: Path = CACHE) -> tuple[Path, float]:
    """The cached store of ``posts`` posts, generated first if needed; (path, seconds spent)."""
    path = store_path(posts, seed=seed, cache=cache)
    if path.exists():
        return path, 0.0
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    for leftover in cache.glob(partial.name + "*"):
        leftover.unlink()
    started = time.perf_counter()
    generate(partial, posts, seed=seed)
    partial.rename(path)
    return path, time.perf_counter() - started


def generate(path: Path, posts: int, *, seed: int = SEED) -> None:
    """Write a store of ``posts`` posts at ``path`` (which must not exist)."""
    store = open_store(f"sqlite:///{path}")
    try:
        sources = min(SOURCES, max(posts, 1))
        specs = [SourceSpec(url=f"{SITE}/feeds/{index}.xml") for index in range(sources)]
        source_ids = store.apply_sources(specs, origin="config", now=_NOW)
    finally:
        store.close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        # One bulk transaction with a rollback journal: in WAL mode every page would be written
        # twice (to the WAL, then to the file). The store's own WAL mode is restored after.
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        for batch in _batches(posts, source_ids, seed):
            conn.executemany(_insert("posts", batch[0][0]), [row for row, _ in batch])
            conn.executemany(_insert("sightings", batch[0][1]), [row for _, row in batch])
        # Posts stored by ingest wait on the search backlog until indexed; these too.
        conn.execute("INSERT INTO search_backlog (post_id) SELECT id FROM posts")
        conn.execute("COMMIT")
        stored = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
        conn.execute("PRAGMA journal_mode=WAL")
    if stored != posts:
        raise RuntimeError(f"generated {stored} posts instead of {posts}")


def _insert(table: str, row: dict[str, Any]) -> str:
    names = ", ".join(row)
    return f"INSERT INTO {table} ({names}) VALUES ({', '.join(':' + n for n in row)})"


Row = dict[str, Any]


def _batches(posts: int, source_ids: Sequence[int], seed: int) -> Iterator[list[tuple[Row, Row]]]:
    rng = random.Random(seed)
    rare_every = max(posts // RARE_POSTS, 1)
    seen = _NOW.strftime(_STAMP)
    batch: list[tuple[Row, Row]] = []
    for index in range(posts):
        feed, item = divmod(index, 20)
        source_id = source_ids[feed % len(source_ids)]
        title = item_title(rng, feed, item)
        body = item_body(rng, feed, item, title, seed=seed)
        if index % rare_every == rare_every // 2:
            body = body.replace("</div>", f"<p>Analysts call it {RARE_TERM}.</p></div>")
        link = f"{SITE}/articles/{feed}/{item}.htm"
        digest = content_hash(title, body)
        post: Row = {
            "id": index + 1,
            "content_hash": digest,
            "title": title,
            "categories": json.dumps([AUTHORS[feed % len(AUTHORS)]], ensure_ascii=False),
            "headimg": None,
            "author": AUTHORS[feed % len(AUTHORS)],
            "comments": 0,
            "published_at": (_NOW - timedelta(minutes=index)).strftime(_STAMP),
            "thumbnail": None,
            "body": body,
            "link": link,
            "guid": link,
            "source_id": source_id,
            "first_seen_at": seen,
            "updated_at": seen,
            "revision": 1,
        }
        sighting: Row = {
            "post_id": index + 1,
            "source_id": source_id,
            "entry_key": link,
            "guid": link,
            "link": link,
            "content_hash": digest,
            "first_seen_at": seen,
            "last_seen_at": seen,
        }
        batch.append((post, sighting))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    rank = max(math.ceil(fraction * len(ordered)), 1)
    return ordered[rank - 1]


def measure(store: Store, *, rounds: int, limit: int = 20) -> dict[str, Any]:
    """p50/p95 over ``rounds`` timed calls of every query (after one warm-up call each)."""
    timings: list[float] = []
    per_query: list[dict[str, Any]] = []
    for kind, query in QUERIES:
        hits = len(store.search_posts(query, limit=limit))
        times: list[float] = []
        for _ in range(rounds):
            started = time.perf_counter()
            store.search_posts(query, limit=limit)
            times.append((time.perf_counter() - started) * 1000)
        timings += times
        per_query.append(
            {"kind": kind, "query": query, "hits": hits, "median_ms": statistics.median(times)}
        )
    return {
        "p50_ms": percentile(timings, 0.50),
        "p95_ms": percentile(timings, 0.95),
        "calls": len(timings),
        "queries": per_query,
    }


def run(posts: int, *, rounds: int, seed: int = SEED, cache: Path = CACHE) -> dict[str, Any]:
    """The search figures over a (cached) store of ``posts`` posts."""
    path, generated_s = ensure_store(posts, seed=seed, cache=cache)
    started = time.perf_counter()
    store = open_store(f"sqlite:///{path}")
    opened_s = time.perf_counter() - started
    try:
        started = time.perf_counter()
        indexed = store.index_backlog()  # once per cached store: the first run pays for it
        indexed_s = time.perf_counter() - started
        figures = measure(store, rounds=rounds)
    finally:
        store.close()
    return {
        "posts": posts,
        "store": str(path),
        "generated_s": generated_s,
        "open_s": opened_s,
        "indexed": indexed,
        "indexed_s": indexed_s,
        "rounds": rounds,
        **figures,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Search latency over a large generated store.")
    parser.add_argument("--posts", type=int, default=POSTS)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument(
        "--generate-only", action="store_true", help="only make sure the cached store exists"
    )
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    if args.generate_only:
        path, seconds = ensure_store(args.posts, seed=args.seed, cache=args.cache)
        print(f"{path} ({seconds:.0f} s to generate)")
        return
    figures = run(args.posts, rounds=args.rounds, seed=args.seed, cache=args.cache)
    print(
        f"search over {args.posts:,} posts: p50 {figures['p50_ms']:.1f} ms, "
        f"p95 {figures['p95_ms']:.1f} ms"
    )
    for query in figures["queries"]:
        print(
            f"  {query['kind']:<24} {query['query']:<14} {query['median_ms']:8.1f} ms "
            f"({query['hits']} hits)"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
