"""The ``sources`` table: sources from the config and from ``ingest feeds``, their state.

Contract: each function taking a ``Database`` is one transaction; ``save_updates`` writes inside
the caller's (the check's). ``sync_sources`` applies the config as the caller's planner says
(``ingest.sources.plan_config``): it adds, updates, retires (disables, keeping every post and
sighting) and revives, never deletes, and an unchanged config changes nothing.
``apply_sources`` only adds and updates. ``add_source`` and ``import_sources`` add only URLs
the caller's ``DuplicateFinder`` does not find stored; ``import_sources`` adds every new source
of a list or, on any error, none. ``remove_source`` deletes the source and its sightings; its
posts stay (their ``source_id`` becomes NULL) unless ``purge`` is asked, which deletes the
posts no other source has seen, and keeps those another source also served.

URLs arrive as they are stored (``ingest.config.canonical_source_url``): the caller
canonicalises what a user typed; whether two stored spellings are one source is the caller's
rule, handed in.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ingest.errors import ErrorKind
from ingest.types import (
    DuplicateFinder,
    SourceSpec,
    SourcesPlan,
    SourcesPlanner,
    SourceState,
    SourceUpdate,
    StoredSource,
)
from storage.bulk import Bulk
from storage.engine import Database
from storage.models import POSTS, SIGHTINGS, SOURCES, T
from storage.websub import PUSH_UNTIL

_CHUNK = 500


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What ``import_sources`` did: the sources added, and each URL skipped with why."""

    added: list[StoredSource]
    skipped: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Removal:
    """What ``remove_source`` did to the source's posts."""

    source: StoredSource
    posts_deleted: int
    posts_kept: int


def merged_spec(old: SourceSpec, given: SourceSpec, clear: Collection[str] = ()) -> SourceSpec:
    """``old`` with the settings ``given`` sets (a name, categories, rules, an interval)
    replacing it; its ``site_url``, not a setting, kept. The lists named in ``clear``
    (``keep``, ``block``) are emptied first, so ``given`` may set them anew."""
    old = replace(
        old,
        keep=() if "keep" in clear else old.keep,
        block=() if "block" in clear else old.block,
    )
    return SourceSpec(
        url=old.url,
        name=given.name if given.name is not None else old.name,
        categories=given.categories or old.categories,
        interval_s=given.interval_s if given.interval_s is not None else old.interval_s,
        comments=given.comments if given.comments is not None else old.comments,
        max_body=given.max_body if given.max_body is not None else old.max_body,
        site_url=old.site_url,
        keep=given.keep or old.keep,
        block=given.block or old.block,
    )


def list_sources(store: Database) -> list[StoredSource]:
    """Every source, by id."""
    with store.read() as conn:
        return _all(conn)


def find_source(store: Database, key: str, urls: Sequence[str] = ()) -> StoredSource | None:
    """The source whose id is ``key``, else whose URL or former URL is ``key`` or, failing that,
    one of ``urls`` (``key`` as the caller canonicalises it), in that order."""
    with store.read() as conn:
        if key.strip().isdigit():
            row = conn.execute(select(SOURCES).where(T.id == int(key))).mappings().first()
            return _stored(row) if row else None
        known = known_urls(conn)
        source_id = next((known[url] for url in (key, *urls) if url in known), None)
        return None if source_id is None else _get(conn, source_id)


def add_source(
    store: Database, spec: SourceSpec, *, origin: str, now: datetime, duplicate: DuplicateFinder
) -> tuple[StoredSource, bool]:
    """Add ``spec``, unless ``duplicate`` finds it stored; the source, and whether it is new."""
    with store.write() as conn:
        existing = duplicate(_all(conn), spec.url)
        if existing is not None:
            return existing, False
        return _get(conn, insert_source(conn, spec, origin=origin, now=now)), True


def import_sources(
    store: Database,
    specs: Sequence[SourceSpec],
    *,
    origin: str,
    now: datetime,
    duplicate: DuplicateFinder,
) -> ImportResult:
    """Add every source of ``specs`` that is new, in order; skip the others, saying why."""
    added: list[StoredSource] = []
    skipped: list[tuple[str, str]] = []
    with store.write() as conn:
        stored = _all(conn)
        for spec in specs:
            if duplicate(added, spec.url) is not None:
                skipped.append((spec.url, "repeated in the file"))
            elif (existing := duplicate(stored, spec.url)) is not None:
                skipped.append((spec.url, f"already stored as source {existing.id}"))
            else:
                added.append(_get(conn, insert_source(conn, spec, origin=origin, now=now)))
    return ImportResult(added, skipped)


def update_source(
    store: Database, source_id: int, given: SourceSpec, clear: Collection[str] = ()
) -> StoredSource | None:
    """Apply the settings ``given`` sets to source ``source_id``, emptying the lists ``clear``
    names first (``merged_spec``); None if there is no such source."""
    with store.write() as conn:
        row = conn.execute(select(SOURCES).where(T.id == source_id)).mappings().first()
        if row is None:
            return None
        new = merged_spec(spec_from_row(row), given, clear)
        conn.execute(update(SOURCES).where(T.id == source_id).values(**spec_columns(new)))
        return _get(conn, source_id)


def set_enabled(
    store: Database, source_id: int, *, enabled: bool, reason: str | None = None
) -> StoredSource | None:
    """Poll source ``source_id`` again, or stop polling it for ``reason``; None if there is no
    such source.

    Either way it is no longer retired: enabling a source the config retired makes it one the
    user manages (origin ``cli``), since the config would retire it again.
    """
    with store.write() as conn:
        row = conn.execute(select(SOURCES).where(T.id == source_id)).mappings().first()
        if row is None:
            return None
        values: dict[str, Any] = {
            "enabled": enabled,
            "disabled_reason": None if enabled else reason,
            "retired_at": None,
        }
        if enabled and row["retired_at"] is not None and not row["enabled"]:
            values["origin"] = "cli"
        conn.execute(update(SOURCES).where(T.id == source_id).values(**values))
        return _get(conn, source_id)


def reset_errors(store: Database, source_id: int) -> StoredSource | None:
    """Forget source ``source_id``'s failures (count, last error, backoff, a server's
    Retry-After, a 410 Gone that disabled it) so it is due now; None if there is none.

    A source disabled by hand or retired by the config stays so.
    """
    with store.write() as conn:
        row = conn.execute(select(SOURCES).where(T.id == source_id)).mappings().first()
        if row is None:
            return None
        values: dict[str, Any] = {
            "error_count": 0,
            "last_error": None,
            "last_error_kind": None,
            "retry_after_until": None,
            "next_check_at": None,
        }
        if not row["enabled"] and row["last_error_kind"] == ErrorKind.GONE.value:
            values.update(enabled=True, disabled_reason=None)
        conn.execute(update(SOURCES).where(T.id == source_id).values(**values))
        return _get(conn, source_id)


def remove_source(store: Database, source_id: int, *, purge: bool) -> Removal | None:
    """Delete source ``source_id`` (None if there is none), and with ``purge`` its own posts."""
    with store.write() as conn:
        row = conn.execute(select(SOURCES).where(T.id == source_id)).mappings().first()
        if row is None:
            return None
        seen_here = exists(
            select(SIGHTINGS.c.id).where(
                SIGHTINGS.c.post_id == POSTS.c.id, SIGHTINGS.c.source_id == source_id
            )
        )
        seen_elsewhere = exists(
            select(SIGHTINGS.c.id).where(
                SIGHTINGS.c.post_id == POSTS.c.id, SIGHTINGS.c.source_id != source_id
            )
        )
        theirs = or_(POSTS.c.source_id == source_id, seen_here)
        deleted = 0
        if purge:
            doomed = list(conn.execute(select(POSTS.c.id).where(theirs, ~seen_elsewhere)).scalars())
            for start in range(0, len(doomed), _CHUNK):
                conn.execute(delete(POSTS).where(POSTS.c.id.in_(doomed[start : start + _CHUNK])))
            deleted = len(doomed)
        kept = conn.execute(select(func.count()).select_from(POSTS).where(theirs)).scalar_one()
        # Sightings go by ON DELETE CASCADE, posts.source_id becomes NULL by ON DELETE SET NULL.
        conn.execute(delete(SOURCES).where(T.id == source_id))
    return Removal(_stored(row), deleted, kept)


def _get(conn: Connection, source_id: int) -> StoredSource:
    return _stored(conn.execute(select(SOURCES).where(T.id == source_id)).mappings().one())


def _all(conn: Connection) -> list[StoredSource]:
    return [_stored(row) for row in conn.execute(select(SOURCES).order_by(T.id)).mappings()]


def _stored(row: RowMapping) -> StoredSource:
    return StoredSource(
        id=row["id"],
        spec=spec_from_row(row),
        origin=row["origin"],
        enabled=row["enabled"],
        title=row["title"],
        created_at=row["created_at"],
        previous_urls=tuple(row["previous_urls"] or ()),
        disabled_reason=row["disabled_reason"],
        retired_at=row["retired_at"],
    )


@dataclass(frozen=True, slots=True)
class SourceSync:
    """What ``sync_sources`` did: the sources it added, retired and revived."""

    added: list[StoredSource]
    retired: list[StoredSource]
    revived: list[StoredSource]


def sync_sources(
    store: Database,
    specs: Sequence[SourceSpec],
    *,
    plan: SourcesPlanner,
    reason: str,
    now: datetime,
) -> SourceSync:
    """Apply the config's sources ``specs`` as ``plan`` says, in one transaction.

    A retired source is disabled with ``reason`` and its retirement time; its posts and
    sightings stay. A revived one is enabled again, due at once.
    """
    with store.write() as conn:
        decided = plan(_all(conn), specs)
        added = [insert_source(conn, spec, origin="config", now=now) for spec in decided.add]
        if decided.update:
            conn.execute(
                _SAVE_SETTINGS,
                [{**spec_columns(spec), "source_id": i} for i, spec in decided.update],
            )
        if decided.retire:
            conn.execute(
                update(SOURCES)
                .where(T.id.in_(decided.retire))
                .values(enabled=False, disabled_reason=reason, retired_at=now)
            )
        if decided.revive:
            conn.execute(
                update(SOURCES)
                .where(T.id.in_(decided.revive))
                .values(enabled=True, disabled_reason=None, retired_at=None, next_check_at=None)
            )
        return SourceSync(
            added=[_get(conn, i) for i in added],
            retired=[_get(conn, i) for i in decided.retire],
            revived=[_get(conn, i) for i in decided.revive],
        )


def config_applied(conn: Connection, specs: Sequence[SourceSpec], plan: SourcesPlanner) -> bool:
    """Whether applying the config's sources ``specs`` as ``plan`` says would change nothing,
    in ``conn``'s transaction."""
    return plan(_all(conn), specs) == SourcesPlan()


def apply_sources(
    store: Database, specs: Iterable[SourceSpec], *, origin: str, now: datetime
) -> list[int]:
    """Add the sources in ``specs`` or update their settings; their ids, in order.

    A spec whose URL a source was permanently redirected away from updates that source rather
    than adding the old URL again.
    """
    ids: list[int] = []
    with store.write() as conn:
        rows = conn.execute(select(SOURCES)).all()
        known = _url_index(rows)
        current = {row.id: spec_from_row(row._mapping) for row in rows}
        changed: list[dict[str, Any]] = []
        for spec in specs:
            source_id = known.get(spec.url)
            if source_id is None:
                source_id = insert_source(conn, spec, origin=origin, now=now)
                known[spec.url] = source_id
            elif _settings_differ(current[source_id], spec):
                changed.append({**spec_columns(spec), "source_id": source_id})
            current[source_id] = spec  # the same source listed again compares with this
            ids.append(source_id)
        if changed:
            conn.execute(_SAVE_SETTINGS, changed)
    return ids


def _settings_differ(stored: SourceSpec, wanted: SourceSpec) -> bool:
    """Whether applying ``wanted`` would change the stored settings (its URL aside: a moved
    source keeps answering to its old URL)."""
    return spec_columns(stored) != spec_columns(wanted)


def insert_source(conn: Connection, spec: SourceSpec, *, origin: str, now: datetime) -> int:
    """Add the source ``spec`` (its URL not yet known); its id.

    An upsert: replicas starting at once on a fresh store all add the config's sources, and
    the ones that lose the race take the id the winner stored.
    """
    row = {
        "url": spec.url,
        "site_url": spec.site_url,
        "origin": origin,
        "created_at": now,
        **spec_columns(spec),
    }
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    added = conn.execute(
        insert(SOURCES).values(row).on_conflict_do_nothing(index_elements=["url"]).returning(T.id)
    ).scalar()
    if added is None:
        added = conn.execute(select(T.id).where(T.url == spec.url)).scalar_one()
    return int(added)


def known_urls(conn: Connection) -> dict[str, int]:
    """Source id by URL, including the URLs sources were permanently redirected away from."""
    return _url_index(conn.execute(select(T.id, T.url, T.previous_urls)).all())


def _url_index(rows: Sequence[Any]) -> dict[str, int]:
    """``known_urls`` of source rows: a current URL wins over another source's previous one."""
    known = {row.url: row.id for row in rows}
    for row in rows:
        for old_url in row.previous_urls or ():
            known.setdefault(old_url, row.id)
    return known


def load_states(store: Database, ids: Sequence[int] | None = None) -> list[SourceState]:
    """The state of every source (or of ``ids``), ordered by id."""
    with store.read() as conn:
        return states(conn, ids)


def states(conn: Connection, ids: Sequence[int] | None = None) -> list[SourceState]:
    """``load_states`` in ``conn``'s transaction."""
    query = select(SOURCES, PUSH_UNTIL).order_by(T.id)
    if ids is not None:
        query = query.where(T.id.in_(ids))
    return [state_from_row(row) for row in conn.execute(query).mappings()]


_SPEC_COLUMNS = (
    "name",
    "categories",
    "interval_s",
    "comments",
    "max_body",
    "keep_rules",
    "block_rules",
)
_SAVE_SETTINGS = (
    update(SOURCES)
    .where(T.id == bindparam("source_id"))
    .values({name: bindparam(name) for name in _SPEC_COLUMNS})
)
_STATE_COLUMNS = (
    "enabled",
    "title",
    "etag",
    "last_modified",
    "error_count",
    "last_error",
    "disabled_reason",
    "redirect_url",
    "redirect_count",
    "ttl_s",
    "posts_per_week",
)
_SAVE_STATE = (
    "UPDATE sources SET "
    + ", ".join(f"{name} = ?" for name in _STATE_COLUMNS)
    + ", last_error_kind = ?, next_check_at = ?, retry_after_until = ?, last_status = ?,"
    " last_filtered = COALESCE(?, last_filtered),"
    " last_checked_at = ?,"
    " last_success_at = CASE WHEN ? THEN ? ELSE last_success_at END,"
    " lease_owner = NULL, lease_until = NULL WHERE id = ?"
)


def save_updates(
    conn: Connection, changes: Sequence[tuple[SourceState, SourceUpdate, int | None]]
) -> None:
    """Write each ``change`` onto its source, with the entries its new document had filtered
    (None: no new document, the last count stays), in the caller's transaction; the check ends
    the source's lease.

    A move to a URL another source already has is not applied (the two would collide); the
    redirect stays recorded instead.
    """
    bulk = Bulk(conn)
    rows = []
    for state, change, filtered in changes:
        values = [getattr(change, name) for name in _STATE_COLUMNS]
        if change.url != state.url:
            values[_STATE_COLUMNS.index("redirect_url")] = _move(conn, state, change.url)
        checked = bulk.time(change.checked_at)
        rows.append(
            (
                *values,
                change.last_error_kind.value if change.last_error_kind else None,
                bulk.time(change.next_check_at),
                bulk.time(change.retry_after_until),
                change.status.value,
                filtered,
                checked,
                change.status.succeeded,
                checked,
                state.id,
            )
        )
    bulk.many(_SAVE_STATE, rows)


def _move(conn: Connection, state: SourceState, url: str) -> str | None:
    """Move source ``state`` to ``url`` unless another source has it; the redirect to keep."""
    if conn.execute(select(T.id).where(T.url == url)).first() is not None:
        return url
    previous = conn.execute(select(T.previous_urls).where(T.id == state.id)).scalar_one()
    conn.execute(
        update(SOURCES)
        .where(T.id == state.id)
        .values(url=url, previous_urls=[*(previous or []), state.url])
    )
    return None


def spec_columns(spec: SourceSpec) -> dict[str, Any]:
    """The ``sources`` columns a source's settings fill."""
    return {
        "name": spec.name,
        "categories": list(spec.categories),
        "interval_s": spec.interval_s,
        "comments": spec.comments,
        "max_body": spec.max_body,
        "keep_rules": list(spec.keep),
        "block_rules": list(spec.block),
    }


def spec_from_row(row: RowMapping) -> SourceSpec:
    """The settings of a ``sources`` row: what ``spec_columns`` wrote."""
    return SourceSpec(
        url=row["url"],
        name=row["name"],
        categories=tuple(row["categories"] or ()),
        interval_s=row["interval_s"],
        comments=row["comments"],
        max_body=row["max_body"],
        site_url=row["site_url"],
        keep=tuple(row["keep_rules"] or ()),
        block=tuple(row["block_rules"] or ()),
    )


def state_from_row(row: RowMapping) -> SourceState:
    return SourceState(
        id=row["id"],
        url=row["url"],
        spec=spec_from_row(row),
        enabled=row["enabled"],
        title=row["title"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        last_checked_at=row["last_checked_at"],
        next_check_at=row["next_check_at"],
        error_count=row["error_count"],
        retry_after_until=row["retry_after_until"],
        disabled_reason=row["disabled_reason"],
        redirect_url=row["redirect_url"],
        redirect_count=row["redirect_count"],
        ttl_s=row["ttl_s"],
        posts_per_week=row["posts_per_week"],
        push_until=row.get("push_until"),
    )


def count_sources(store: Database) -> int:
    """How many sources there are, enabled or not."""
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(SOURCES)).scalar_one())


def count_failing(store: Database) -> int:
    """How many enabled sources failed their last check."""
    with store.read() as conn:
        return count_failing_in(conn)


def count_failing_in(conn: Connection) -> int:
    """``count_failing`` in the transaction of ``conn``."""
    query = select(func.count()).select_from(SOURCES).where(T.enabled.is_(True), T.error_count > 0)
    return int(conn.execute(query).scalar_one())
