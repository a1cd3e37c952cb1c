"""Full-text search over posts' titles and plain text, in any language, on both backends.

The index (``posts_fts``, migration 0003) holds each post's title and plain body text, rewritten
by ``storage.searchtext`` so that Chinese, Japanese and Korean are searchable.

Indexing is kept out of a check's transaction: storing a post only puts its id on
``search_backlog`` (``enqueue``), and ``index_backlog`` indexes the backlog in batches -- by the
pipeline's writer thread whenever no check is waiting, between the daemon's ticks, and before
every search, so a search always sees every stored post. Indexing a post costs more than
storing it (tokenizing ~3 KB into FTS5's b-tree); done per source check it would halve
ingestion, done in batches it is several times cheaper.

A query's terms (``storage.searchtext.query_terms``) must all occur in a post. The index finds
the matches, newest first, and keeps at most ``CANDIDATES``; those are ranked by how often each
term occurs, a title hit weighing ``TITLE_WEIGHT`` body hits, with BM25's saturation and
length normalization; ties go to the newest. A very common term (half of a million posts) is
thus ranked among its latest matches, which keeps every query fast; a rarer one among all.

- SQLite: FTS5 ``MATCH``; FTS5 walks its matches in rowid order and stops at the limit.
- PostgreSQL: the ``simple`` tsvector ``@@`` a tsquery built from the same terms, GIN-indexed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    LargeBinary,
    Select,
    TableClause,
    and_,
    cast,
    column,
    delete,
    func,
    insert,
    literal,
    select,
    table,
    text,
)

from ingest.types import StoredPost
from storage.bulk import Bulk
from storage.engine import Database
from storage.entries import select_posts, stored_post
from storage.models import BACKLOG, POSTS, SEARCH_INDEX
from storage.searchtext import Term, indexed_fields, query_terms

CANDIDATES = 500
"""Matches ranked per query, newest first: enough that a specific query ranks all of its own,
few enough that ranking them (reading their text) stays within milliseconds."""
TITLE_WEIGHT = 5.0
"""How many body occurrences one title occurrence is worth."""
_K1, _B = 1.2, 0.75  # BM25's usual term-frequency saturation and length normalization
_TYPICAL_LENGTH = 6000.0
"""BM25's average document length, in bytes of indexed text (a 3 KB post of mixed Chinese and
English): a constant, since averaging over the store would read all of it on every query."""
INDEX_BATCH = 1000
"""Posts indexed per transaction: large enough that FTS5 writes few segments, small enough that
a writer waiting behind one waits well under a second."""


def _index(conn: Connection) -> tuple[TableClause, ColumnElement[int]]:
    """The index table as this dialect names it, and its column holding the post id."""
    key = "rowid" if conn.dialect.name == "sqlite" else "post_id"
    index = table(SEARCH_INDEX, column(key), column("title"), column("body"), column("document"))
    return index, index.c[key]


def enqueue(bulk: Bulk, post_ids: Sequence[int]) -> None:
    """Put ``post_ids`` (new or revised) on the search backlog, in the caller's transaction."""
    # DO UPDATE, not DO NOTHING: on PostgreSQL, an entry an indexer has locked (and will delete
    # once it has indexed the post's old text) must make this insert wait and then add the
    # entry again; DO NOTHING would not wait, and the revision would never be indexed.
    bulk.many(
        "INSERT INTO search_backlog (post_id) VALUES (?) "
        "ON CONFLICT (post_id) DO UPDATE SET post_id = excluded.post_id",
        [(post_id,) for post_id in post_ids],
    )


def index_backlog(store: Database, *, batch: int = INDEX_BATCH, most: int | None = None) -> int:
    """Index posts on the backlog, ``batch`` per write transaction, at most ``most`` (all when
    None); how many were indexed. A failure leaves the batch on the backlog for next time."""
    done = 0
    while most is None or done < most:
        size = batch if most is None else min(batch, most - done)
        with store.write() as conn:
            ids = list(conn.execute(_claim_backlog(conn, size)).scalars())
            if not ids:
                break
            rows = conn.execute(
                select(POSTS.c.id, POSTS.c.title, POSTS.c.body).where(POSTS.c.id.in_(ids))
            ).all()
            _index_rows(conn, [(row.id, *indexed_fields(row.title, row.body)) for row in rows])
            conn.execute(delete(BACKLOG).where(BACKLOG.c.post_id.in_(ids)))
        done += len(ids)
    return done


def _claim_backlog(conn: Connection, size: int) -> Select[tuple[int]]:
    """The next ``size`` backlog entries; on PostgreSQL locked, and skipping those another
    replica is indexing, so replicas index disjoint batches (DESIGN §7)."""
    query = select(BACKLOG.c.post_id).order_by(BACKLOG.c.post_id).limit(size)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return query


def backlog_size(store: Database) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(BACKLOG)).scalar_one())


def _index_rows(conn: Connection, rows: Sequence[tuple[int, str, str]]) -> None:
    """(Re)write the index rows of (post id, title, body) ``rows``."""
    if not rows:
        return
    index, key = _index(conn)
    conn.execute(delete(index).where(key.in_([post_id for post_id, _, _ in rows])))
    conn.execute(
        insert(index), [{key.name: post_id, "title": t, "body": b} for post_id, t, b in rows]
    )


def search_posts(store: Database, query: str, *, limit: int = 20) -> list[StoredPost]:
    """Posts holding every term of ``query``, best first; empty for a query without terms."""
    terms = query_terms(query)
    if not terms:
        return []
    index_backlog(store)
    with store.read() as conn:
        index, key = _index(conn)
        matches = _sqlite_matches if store.is_sqlite else _postgres_matches
        # The score is computed in the subquery, on the index row at hand, for the candidates
        # only: reading the text again outside would cost as much as the rest of the query.
        hits = (
            matches(index, terms)
            .add_columns(key.label("post_id"), _score(index, terms, store.is_sqlite).label("score"))
            .order_by(key.desc())
            .limit(CANDIDATES)
            .subquery("hits")
        )
        ranked = (
            select_posts()
            .join(hits, hits.c.post_id == POSTS.c.id)
            .order_by(hits.c.score.desc(), POSTS.c.published_at.desc(), POSTS.c.id.desc())
            .limit(limit)
        )
        return [stored_post(row) for row in conn.execute(ranked).mappings()]


def _sqlite_matches(index: TableClause, terms: Sequence[Term]) -> Select[Any]:
    # Each term an FTS5 string ("" escapes a quote, nothing inside is syntax), its last word
    # a prefix where the term ends in a lone CJK character; juxtaposed strings must all match.
    match = " ".join(
        '"' + t.phrase.replace('"', '""') + '"' + ("*" if t.prefix else "") for t in terms
    )
    matched = text(f"{SEARCH_INDEX} MATCH :match").bindparams(match=match)
    return select().select_from(index).where(matched)


def _postgres_matches(index: TableClause, terms: Sequence[Term]) -> Select[Any]:
    return (
        select()
        .select_from(index)
        .where(and_(*(index.c.document.op("@@")(_tsquery(t)) for t in terms)))
    )


def _tsquery(term: Term) -> ColumnElement[object]:
    """``term`` as a tsquery: its words in a row, the last one a prefix if the term says so."""
    if not term.prefix:
        return func.phraseto_tsquery("simple", term.phrase)
    head, _, last = term.phrase.rpartition(" ")
    # ``last`` is one CJK character (see ``Term``): nothing in it needs quoting in a tsquery.
    tail = func.to_tsquery("simple", literal(f"'{last}':*"))
    return func.tsquery_phrase(func.phraseto_tsquery("simple", head), tail) if head else tail


def _score(index: TableClause, terms: Sequence[Term], is_sqlite: bool) -> ColumnElement[float]:
    """BM25's term-frequency part, summed over the terms (no IDF: see the module docstring)."""

    def size(value: ColumnElement[Any]) -> ColumnElement[float]:
        # Bytes, not characters: SQLite counts a text's characters by reading all of it, but
        # knows a blob's size; occurrences come out the same either way.
        counted = func.length(cast(value, LargeBinary)) if is_sqlite else func.octet_length(value)
        return cast(counted, Float)

    def occurrences(text_column: ColumnElement[Any], needle: str) -> ColumnElement[float]:
        # The index holds lower-case text (``index_text``) and so is ``needle``.
        return (size(text_column) - size(func.replace(text_column, needle, ""))) / len(
            needle.encode()
        )

    saturation = _K1 * (1 - _B + _B * size(index.c.body) / _TYPICAL_LENGTH)
    score: ColumnElement[float] = literal(0.0)
    for term in terms:
        in_title = occurrences(index.c.title, term.phrase)
        in_body = occurrences(index.c.body, term.phrase)
        score = (
            score + TITLE_WEIGHT * in_title / (in_title + _K1) + in_body / (in_body + saturation)
        )
    return score
