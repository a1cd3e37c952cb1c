"""Entries per second of each stage of a cold pass, in-process, on one core.

``python -m bench.stages [--feeds K] [--items M] [--rounds R] [--corpus DIR] [--json FILE]``

On the farm's own documents (the first K feeds of ``bench.corpus``), or with ``--corpus`` on every
feed file under DIR that digests (``tests/data/corpus``: real feeds of every format, the ones
feedparser reads and the fast path declines included), each stage is timed alone, R rounds, and
the median kept:

- parse: ``ingest.digest.parse.parse_feed`` (encoding, DOCTYPE removal, feedparser, raw entries);
- normalize: ``ingest.digest.normalize.post_from_entry`` for every raw entry (nh3 sanitizing, text
  extraction, first image, content hash);
- store: ``Store.record_checks`` per feed into a fresh SQLite store (one transaction per
  feed, as the writer thread does, ``ingest.identity.decide`` deciding);
- digest: ``ingest.digest.document.digest_feed``, parse and normalize together, as a worker
  runs them.

The slowest stage is the single-core bottleneck; the serial estimate
``1 / (1/parse + 1/normalize + 1/store)`` is what one core doing everything would reach.

Beside them, in the same run: ``parse_feedparser``, the parse stage with the fast path off (the
reference it is measured against), and two floors no Python around them can beat: ``lxml_read``
(lxml building each document's tree and touching every element, nothing kept) and ``nh3_clean``
(nh3's default cleaning of every entry's raw body, the least sanitizing a post gets). ``floor``
combines them: the parse + normalize rate of a pipeline that did nothing but those two calls.
The verdict compares ``digest`` with the target (``TARGETS``).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nh3
import structlog
from lxml import etree

from bench.corpus import SEED, feed_document
from bench.farm import feed_url
from ingest.config import ScheduleSettings
from ingest.digest import fast
from ingest.digest.document import digest_feed, fallback_name
from ingest.digest.normalize import FeedContext, post_from_entry
from ingest.digest.parse import parse_feed
from ingest.errors import EntryError, SourceError
from ingest.identity import decide
from ingest.types import Check, Digest, Fetched, Post, RawEntry, RawFeed, SourceSpec
from scheduler.policy import after_success
from storage import open_store

SCHEDULE = ScheduleSettings(
    min_interval=300.0,
    max_interval=86400.0,
    backoff_cap=86400.0,
    max_retry_after=604800.0,
    lease=60.0,
)
_PORT = 8080  # URLs only name the feeds here; nothing is fetched
TARGETS = {"farm": 15_000.0, "corpus": 10_000.0}
"""Parse + normalize entries per second on one core that the digest stage is held to."""


def _median_seconds(rounds: int, action: Callable[[], object]) -> float:
    times: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(feeds: int, items: int, *, rounds: int = 3, seed: int = SEED) -> dict[str, Any]:
    """Each stage's entries per second over ``feeds`` documents of ``items`` entries."""
    urls = [feed_url(_PORT, feed) for feed in range(feeds)]
    documents = [feed_document(feed, items, seed=seed) for feed in range(feeds)]
    return measure_documents(urls, documents, rounds=rounds)


def corpus_documents(folder: Path) -> tuple[list[str], list[bytes]]:
    """Every file under ``folder`` that digests into posts, with a made-up URL for each."""
    urls: list[str] = []
    documents: list[bytes] = []
    now = datetime.now(UTC)
    for index, path in enumerate(sorted(p for p in folder.rglob("*") if p.is_file())):
        if path.suffix in (".md", ".tsv"):
            continue
        url = f"https://feeds{index}.example.com/{path.name}"
        data = path.read_bytes()
        try:
            digest = digest_feed(data, spec=SourceSpec(url=url), comments=False, now=now, url=url)
        except SourceError:
            continue
        if digest.posts:
            urls.append(url)
            documents.append(data)
    return urls, documents


def measure_documents(
    urls: Sequence[str], documents: Sequence[bytes], *, rounds: int = 3
) -> dict[str, Any]:
    """Each stage's entries per second over ``documents`` (fetched from ``urls``)."""
    feeds = len(documents)
    now = datetime.now(UTC)

    def parse_all() -> list[RawFeed]:
        return [
            parse_feed(data, source=url, url=url) for data, url in zip(documents, urls, strict=True)
        ]

    parsed = parse_all()
    entries = sum(len(feed.entries) for feed in parsed)
    contexts = [
        FeedContext(
            categories=(),
            feed_name=feed.title or fallback_name(url),
            feed_author=feed.author,
            comments=False,
            now=now,
        )
        for feed, url in zip(parsed, urls, strict=True)
    ]

    def normalize_all() -> list[list[Post]]:
        return [
            [post for raw in feed.entries if (post := _normalized(raw, ctx))]
            for feed, ctx in zip(parsed, contexts, strict=True)
        ]

    def digest_all() -> None:
        spec = SourceSpec(url=urls[0])
        for data, url in zip(documents, urls, strict=True):
            digest_feed(data, spec=spec, comments=False, now=now, url=url)

    bodies = [raw.body_html for feed in parsed for raw in feed.entries]
    xml_parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True)

    def lxml_read_all() -> None:
        for data in documents:
            root = etree.fromstring(data, xml_parser)
            for _element in root.iter() if root is not None else ():
                pass

    def clean_all() -> None:
        for body in bodies:
            nh3.clean(body)

    posts = normalize_all()
    parse_fast = _fast_path_documents(parse_all)
    seconds = {
        "parse": _median_seconds(rounds, parse_all),
        "parse_feedparser": _median_seconds(rounds, _without_fast_path(parse_all)),
        "normalize": _median_seconds(rounds, normalize_all),
        "store": statistics.median(_store_all(urls, posts, now) for _ in range(rounds)),
        "digest": _median_seconds(rounds, digest_all),
        "lxml_read": _median_seconds(rounds, lxml_read_all),
        "nh3_clean": _median_seconds(rounds, clean_all),
    }
    rates = {stage: entries / value for stage, value in seconds.items()}
    serial = 1 / sum(1 / rates[stage] for stage in ("parse", "normalize", "store"))
    floor = 1 / (1 / rates["lxml_read"] + 1 / rates["nh3_clean"])
    return {
        "documents": feeds,
        "entries": entries,
        "document_bytes": sum(map(len, documents)),
        "rounds": rounds,
        "fast_path_documents": parse_fast,
        "entries_per_s": {**rates, "serial_estimate": serial, "floor": floor},
        "stored_posts": sum(map(len, posts)),
    }


def _store_all(urls: Sequence[str], posts: Sequence[Sequence[Post]], now: datetime) -> float:
    """Seconds ``Store.record_checks`` takes to store every feed's posts into a fresh store."""
    rng = random.Random(0)
    seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-store-") as folder:
        store = open_store(f"sqlite:///{Path(folder) / 'stage.db'}")
        posts = [_unique_keys(feed_posts) for feed_posts in posts]
        try:
            store.apply_sources([SourceSpec(url=url) for url in urls], origin="config", now=now)
            for state, feed_posts in zip(store.load_states(), posts, strict=True):
                result = Fetched(url=state.url, document=b"", etag='"bench"')
                update = after_success(
                    state,
                    result,
                    Digest(feed_title=None, posts=tuple(feed_posts)),
                    interval_s=1800.0,
                    schedule=SCHEDULE,
                    now=now,
                    rng=rng,
                )
                started = time.perf_counter()
                store.record_checks([Check(state, feed_posts, update, now)], decide=decide)
                seconds += time.perf_counter() - started
        finally:
            store.close()
    return seconds


def _normalized(raw: RawEntry, ctx: FeedContext) -> Post | None:
    """The entry's post, or None for an entry digesting skips (real feeds have some)."""
    try:
        return post_from_entry(raw, ctx)
    except EntryError:
        return None


def _unique_keys(posts: Sequence[Post]) -> list[Post]:
    """One post per entry key: real feeds repeat guids, which one check may not store twice."""
    seen: dict[str, Post] = {}
    for post in posts:
        seen.setdefault(post.entry_key, post)
    return list(seen.values())


def _without_fast_path(action: Callable[[], object]) -> Callable[[], object]:
    def feedparser_alone() -> object:
        enabled = fast.ENABLED
        fast.ENABLED = False
        try:
            return action()
        finally:
            fast.ENABLED = enabled

    return feedparser_alone


def _fast_path_documents(parse_all: Callable[[], object]) -> int:
    """How many documents ``parse_all`` has the fast path read (rather than decline)."""
    read = fast.read
    taken = 0

    def counting(text: str) -> Any:
        nonlocal taken
        result = read(text)
        taken += result is not None
        return result

    fast.read = counting
    try:
        parse_all()
    finally:
        fast.read = read
    return taken


def quiet_logs() -> None:
    """structlog's default prints every event (``store_migrated``...) on stdout: warnings only."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Per-stage entries/s on the farm's documents.")
    parser.add_argument("--feeds", type=int, default=50)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--corpus", type=Path, help="measure on the feed files under this folder")
    parser.add_argument("--no-fast", action="store_true", help="feedparser alone (the reference)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    quiet_logs()
    fast.ENABLED = not args.no_fast
    if args.corpus:
        figures = measure_documents(*corpus_documents(args.corpus), rounds=args.rounds)
    else:
        figures = measure(args.feeds, args.items, rounds=args.rounds, seed=args.seed)
    print(
        f"{figures['documents']} documents, {figures['entries']} entries; "
        f"{figures['fast_path_documents']} read by the fast path"
    )
    rates = figures["entries_per_s"]
    for stage, rate in rates.items():
        print(f"{stage:<16} {rate:>10,.0f} entries/s")
    target = TARGETS["corpus" if args.corpus else "farm"]
    print(
        f"parse vs feedparser {rates['parse'] / rates['parse_feedparser']:.2f}x; "
        f"digest {rates['digest']:,.0f} entries/s against a target of {target:,.0f}: "
        f"{'met' if rates['digest'] >= target else 'NOT met'} "
        f"(floor of lxml + nh3 alone: {rates['floor']:,.0f})"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
