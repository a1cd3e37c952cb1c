"""Storing one check of one source: its posts, its sightings and its new state, atomically.

Contract: ``record_checks`` is one write transaction for one or several checks. For each it
reads what the store knows about the incoming posts, lets the caller's ``Decider``
(``ingest.identity.decide``) say what each one is, writes posts, sightings and the source's
state, and commits -- or, on any error, leaves the store exactly as before. Running it again
with the same posts changes nothing but the check times.

Saving is fenced (DESIGN §7): a check is stored only while its ``owner`` still holds the
source's lease (``owner`` None: while nobody holds one). Otherwise another process has taken
the source over and will store its own, newer check; this one is dropped whole, posts included,
so an edit is never counted twice. Posts are unique by hash either way, so dropping loses
nothing. On PostgreSQL the source rows are locked (``FOR UPDATE``) from that test to the commit.

Writes are batched (one executemany per kind of change, as plain SQL through ``storage.bulk``),
never one ORM object per row: this is the hot path of a cold pass. New and revised posts are
put on the search backlog in the same transaction (``storage.search`` indexes them later), and,
given a ``HookRouter``, their hook deliveries on the outbox (``storage.outbox``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ingest.types import Change, Check, Decider, EntryIntent, HookRouter, KnownSighting, Post
from storage import outbox
from storage.bulk import Bulk
from storage.engine import Database
from storage.models import SOURCES
from storage.search import enqueue
from storage.sources import save_updates


def record_checks(
    store: Database,
    checks: Sequence[Check],
    *,
    decide: Decider,
    route: HookRouter | None = None,
) -> list[Counter[Change] | None]:
    """Store several checks in one transaction (group commit); what happened to each one's
    posts, as ``decide`` said, or None for a check dropped because its lease was lost.

    Each check's writes stay all-or-nothing (they are inside the one transaction), and later
    checks see earlier ones' posts, exactly as if committed one by one.
    """
    with store.write() as conn:
        held = _leases_held(conn, checks)
        kept = [check for check in checks if check.state.id in held]
        counts = {check.state.id: _record(conn, check, decide, route) for check in kept}
        save_updates(conn, [(check.state, check.change, check.filtered) for check in kept])
    return [counts.get(check.state.id) for check in checks]


def _leases_held(conn: Connection, checks: Sequence[Check]) -> set[int]:
    """Ids of the checks' sources whose lease is still their check's owner's (locked on
    PostgreSQL until the transaction ends, so no claimer can take them in between)."""
    owners = {check.state.id: check.owner for check in checks}
    query = select(SOURCES.c.id, SOURCES.c.lease_owner).where(SOURCES.c.id.in_(list(owners)))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return {source_id for source_id, owner in conn.execute(query) if owners[source_id] == owner}


_POST_COLUMNS = (
    "content_hash",
    "title",
    "categories",
    "headimg",
    "author",
    "comments",
    "published_at",
    "thumbnail",
    "body",
    "link",
    "guid",
    "media",
    "source_categories",
    "updated_at",
)
_JSON_COLUMNS = frozenset({"categories", "media"})
_POST_VALUES = ", ".join("?::json" if c in _JSON_COLUMNS else "?" for c in _POST_COLUMNS)
_INSERT_POSTS = (
    f"INSERT INTO posts ({', '.join(_POST_COLUMNS)}, source_id, first_seen_at, revision) "
    f"VALUES ({_POST_VALUES}, ?, ?, 1) "
    # Another replica may store the same post between our read and this insert.
    "ON CONFLICT (content_hash) DO NOTHING"
)
_REVISE_POST = (
    "UPDATE posts SET "
    + ", ".join(f"{c} = ?::json" if c in _JSON_COLUMNS else f"{c} = ?" for c in _POST_COLUMNS)
    + ", revision = revision + 1 WHERE id = ?"
)
_KNOWN_SIGHTINGS = (
    "SELECT s.entry_key, s.post_id, s.content_hash, p.content_hash "
    "FROM sightings s JOIN posts p ON p.id = s.post_id "
    "WHERE s.source_id = ? AND s.entry_key IN (?*)"
)
_STORED_HASHES = "SELECT content_hash, id FROM posts WHERE content_hash IN (?*)"
_UPSERT_SIGHTINGS = (
    "INSERT INTO sightings (post_id, source_id, entry_key, guid, link, content_hash, "
    "first_seen_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (source_id, entry_key) DO UPDATE SET post_id = excluded.post_id, "
    "content_hash = excluded.content_hash, guid = excluded.guid, link = excluded.link, "
    "last_seen_at = excluded.last_seen_at"
)
_TOUCH_SIGHTING = "UPDATE sightings SET last_seen_at = ? WHERE source_id = ? AND entry_key = ?"


def _record(
    conn: Connection, check: Check, decide: Decider, route: HookRouter | None
) -> Counter[Change]:
    if not check.posts:
        return Counter()
    bulk = Bulk(conn)
    posts = check.posts
    source_id = check.state.id
    sightings = {
        key: KnownSighting(post_id, content, post_hash)
        for key, post_id, content, post_hash in bulk.select_in(
            _KNOWN_SIGHTINGS, [p.entry_key for p in posts], source_id
        )
    }
    stored = _stored_hashes(bulk, [p.content_hash for p in posts])
    intents = decide(posts, sightings, stored.keys())
    _apply(bulk, source_id, intents=intents, post_ids=stored, now=check.now)
    if route is not None:
        outbox.enqueue(bulk, check.state, intents, stored, route=route, now=check.now)
    return Counter(intent.change for intent in intents)


def _stored_hashes(bulk: Bulk, hashes: list[str]) -> dict[str, int]:
    return dict(bulk.select_in(_STORED_HASHES, hashes))  # type: ignore[arg-type]


def _apply(
    bulk: Bulk,
    source_id: int,
    *,
    intents: list[EntryIntent],
    post_ids: dict[str, int],
    now: datetime,
) -> None:
    """Write ``intents``; ``post_ids`` (hash -> id of stored posts) is extended as posts are."""
    seen = bulk.time(now)
    new = [i.post for i in intents if i.change is Change.NEW]
    if new:
        bulk.many(_INSERT_POSTS, [(*_post_values(bulk, p, seen), source_id, seen) for p in new])
        post_ids.update(_stored_hashes(bulk, [p.content_hash for p in new]))
        enqueue(bulk, [post_ids[p.content_hash] for p in new])

    revised = [(i.post, i.revise) for i in intents if i.change is Change.UPDATED and i.revise]
    if revised:
        # Queued before the rows change: an indexer holding a post's backlog entry also needs
        # that post's row (the index's foreign key), so taking the two in the other order
        # deadlocks with it on PostgreSQL.
        enqueue(bulk, [post_id for _, post_id in revised])
        bulk.many(_REVISE_POST, [(*_post_values(bulk, p, seen), pid) for p, pid in revised])
        post_ids.update({post.content_hash: post_id for post, post_id in revised})

    bulk.many(
        _UPSERT_SIGHTINGS,
        [
            (
                post_ids[i.post.content_hash],
                source_id,
                i.post.entry_key,
                i.post.guid,
                i.post.link,
                i.post.content_hash,
                seen,
                seen,
            )
            for i in intents
            if i.change is not Change.UNCHANGED
        ],
    )
    bulk.many(
        _TOUCH_SIGHTING,
        [(seen, source_id, i.post.entry_key) for i in intents if i.change is Change.UNCHANGED],
    )


def _post_values(bulk: Bulk, post: Post, seen: Any) -> tuple[Any, ...]:
    """A post's ``_POST_COLUMNS`` values, as the store holds them."""
    return (
        post.content_hash,
        post.title,
        bulk.json(list(post.categories)),
        post.headimg,
        post.author,
        post.comments,
        bulk.time(post.published),
        post.thumbnail,
        post.body,
        post.link,
        post.guid,
        bulk.json(list(post.media)),
        post.source_categories,
        seen,
    )
