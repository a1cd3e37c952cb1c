"""Storing one check of one source: its posts, its sightings and its new state, atomically.

Contract: ``record_check`` is one write transaction (``record_checks`` puts several checks in
one). It reads what the store knows about the incoming posts, lets ``ingest.identity.decide``
say what each one is, writes posts, sightings and the source's state, and commits -- or, on any
error, leaves the store exactly as before. Running it again with the same posts changes nothing
but the check times.

Writes are batched (one INSERT ... RETURNING for new posts, one executemany per kind of change),
never one ORM object per row: this is the hot path of a cold pass. New and revised posts are
put on the search backlog in the same transaction (``storage.search`` indexes them later).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ingest.identity import Change, EntryIntent, KnownSighting, decide
from ingest.types import FeedState, FeedUpdate, Post
from storage.engine import Store
from storage.feeds import save_updates
from storage.models import PostRow, SightingRow
from storage.search import enqueue

POSTS = PostRow.__table__  # type: ignore[attr-defined]
SIGHTINGS = SightingRow.__table__  # type: ignore[attr-defined]
_CHUNK = 500  # bound parameters per IN (...) stay far below every backend's limit


@dataclass(frozen=True, slots=True)
class Check:
    """One check of one source, to store: the posts it found and the source's new state."""

    state: FeedState
    posts: Sequence[Post]
    change: FeedUpdate
    now: datetime


def record_checks(store: Store, checks: Sequence[Check]) -> list[Counter[Change]]:
    """Store several checks in one transaction (group commit); what happened to each one's posts.

    Each check's writes stay all-or-nothing (they are inside the one transaction), and later
    checks see earlier ones' posts, exactly as if committed one by one.
    """
    with store.write() as conn:
        counts = [_record(conn, check) for check in checks]
        save_updates(conn, [(check.state, check.change) for check in checks])
    return counts


def record_check(
    store: Store,
    state: FeedState,
    posts: Sequence[Post],
    change: FeedUpdate,
    *,
    now: datetime,
) -> Counter[Change]:
    """Store ``posts`` seen at source ``state`` and its new state; what happened to the posts."""
    return record_checks(store, [Check(state, posts, change, now)])[0]


# The statements of the hot path, built once: building one costs more than running it.
_KNOWN_SIGHTINGS = select(
    SIGHTINGS.c.entry_key, SIGHTINGS.c.post_id, SIGHTINGS.c.content_hash
).where(
    SIGHTINGS.c.source_id == bindparam("source_id"),
    SIGHTINGS.c.entry_key.in_(bindparam("keys", expanding=True)),
)
_STORED_HASHES = select(POSTS.c.content_hash, POSTS.c.id).where(
    POSTS.c.content_hash.in_(bindparam("hashes", expanding=True))
)
# Rows come back in any order, matched by content hash: asking SQLite for the parameters' order
# makes SQLAlchemy insert one row per statement.
_INSERT_POSTS = POSTS.insert().returning(POSTS.c.id, POSTS.c.content_hash)
_REVISE_POST = (
    update(POSTS).where(POSTS.c.id == bindparam("post_id")).values(revision=POSTS.c.revision + 1)
)
_TOUCH_SIGHTING = (
    update(SIGHTINGS)
    .where(
        SIGHTINGS.c.source_id == bindparam("source"),
        SIGHTINGS.c.entry_key == bindparam("key"),
    )
    .values(last_seen_at=bindparam("seen"))
)


def _upsert_sightings_statement(dialect_name: str) -> Any:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(SIGHTINGS)
    return statement.on_conflict_do_update(
        index_elements=[SIGHTINGS.c.source_id, SIGHTINGS.c.entry_key],
        set_={
            "post_id": statement.excluded.post_id,
            "content_hash": statement.excluded.content_hash,
            "guid": statement.excluded.guid,
            "link": statement.excluded.link,
            "last_seen_at": statement.excluded.last_seen_at,
        },
    )


_UPSERT_SIGHTINGS = {name: _upsert_sightings_statement(name) for name in ("sqlite", "postgresql")}


def _record(conn: Connection, check: Check) -> Counter[Change]:
    if not check.posts:
        return Counter()
    posts = check.posts
    source_id = check.state.id
    sightings = _known_sightings(conn, source_id, [p.entry_key for p in posts])
    stored = _stored_hashes(conn, [p.content_hash for p in posts])
    intents = decide(posts, sightings, stored.keys())
    _apply(conn, source_id, intents=intents, post_ids=stored, now=check.now)
    return Counter(intent.change for intent in intents)


def _known_sightings(conn: Connection, source_id: int, keys: list[str]) -> dict[str, KnownSighting]:
    found: dict[str, KnownSighting] = {}
    for chunk in _chunks(keys):
        for row in conn.execute(_KNOWN_SIGHTINGS, {"source_id": source_id, "keys": chunk}):
            found[row.entry_key] = KnownSighting(row.post_id, row.content_hash)
    return found


def _stored_hashes(conn: Connection, hashes: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(hashes):
        for row in conn.execute(_STORED_HASHES, {"hashes": chunk}):
            found[row.content_hash] = row.id
    return found


def _apply(
    conn: Connection,
    source_id: int,
    *,
    intents: list[EntryIntent],
    post_ids: dict[str, int],
    now: datetime,
) -> None:
    """Write ``intents``; ``post_ids`` (hash -> id of stored posts) is extended as posts are."""
    new = [i.post for i in intents if i.change is Change.NEW]
    if new:
        rows = [
            {**post_columns(p, now), "source_id": source_id, "first_seen_at": now, "revision": 1}
            for p in new
        ]
        inserted = conn.execute(_INSERT_POSTS, rows)
        post_ids.update({row.content_hash: row.id for row in inserted})
        enqueue(conn, [post_ids[p.content_hash] for p in new])

    revised = [i for i in intents if i.change is Change.UPDATED and i.revise is not None]
    if revised:
        conn.execute(
            _REVISE_POST, [{**post_columns(i.post, now), "post_id": i.revise} for i in revised]
        )
        post_ids.update({i.post.content_hash: i.revise for i in revised if i.revise is not None})
        enqueue(conn, [i.revise for i in revised if i.revise is not None])

    pointed = [i for i in intents if i.change is not Change.UNCHANGED]
    if pointed:
        conn.execute(
            _UPSERT_SIGHTINGS[conn.dialect.name],
            [
                {
                    "post_id": post_ids[i.post.content_hash],
                    "source_id": source_id,
                    "entry_key": i.post.entry_key,
                    "guid": i.post.guid,
                    "link": i.post.link,
                    "content_hash": i.post.content_hash,
                    "first_seen_at": now,
                    "last_seen_at": now,
                }
                for i in pointed
            ],
        )

    unchanged = [i.post.entry_key for i in intents if i.change is Change.UNCHANGED]
    if unchanged:
        conn.execute(
            _TOUCH_SIGHTING, [{"source": source_id, "key": key, "seen": now} for key in unchanged]
        )


def post_columns(post: Post, now: datetime) -> dict[str, Any]:
    """The columns a post's content sets, on insert and on revision alike."""
    return {
        "content_hash": post.content_hash,
        "title": post.title,
        "categories": list(post.categories),
        "headimg": post.headimg,
        "author": post.author,
        "comments": post.comments,
        "published_at": post.published,
        "thumbnail": post.thumbnail,
        "body": post.body,
        "link": post.link,
        "guid": post.guid,
        "updated_at": now,
    }


def _chunks(items: list[str]) -> list[list[str]]:
    return [items[start : start + _CHUNK] for start in range(0, len(items), _CHUNK)]
