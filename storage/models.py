"""The store's schema: four tables, documented column by column (see also docs/schema.md).

- ``sources``: every feed or folder polled, its settings and its fetch/schedule state.
- ``posts``: every distinct post, unique by content hash, in the schema of DESIGN §1.
- ``sightings``: every place a post was seen: which source served it under which guid/link.
- ``websub_subscriptions``: WebSub push subscriptions of sources whose feed advertises a hub.

Beside them, ``hook_deliveries`` is the outbox of hook deliveries, ``search_backlog`` lists the
posts waiting to be indexed, and the full-text index ``posts_fts`` (``SEARCH_INDEX``) holds each
post's title and plain text. The index differs per backend (an FTS5 table on SQLite, a table
with a GIN-indexed ``simple`` tsvector on PostgreSQL), so it is created by migration 0003 and
kept by ``storage.search``, not described here.

Each table's handle (``SOURCES``, ``POSTS``, ``SIGHTINGS``, ``BACKLOG``, ``DELIVERIES``) is
declared once, at the end, for the queries of the other ``storage`` modules.

Times are UTC. On SQLite they are stored as ``YYYY-MM-DD HH:MM:SS.ffffff`` text (sortable, and
readable with ``sqlite3``); on PostgreSQL as ``timestamptz``. Categories are JSON arrays.

Changing anything here needs a new migration in ``storage/migrations/versions`` (a test compares
the two).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Index, Text, TypeDecorator, UniqueConstraint
from sqlmodel import Field, SQLModel

SEARCH_INDEX = "posts_fts"
"""The full-text index table; on SQLite its FTS5 shadow tables are named ``posts_fts_*``."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime in Python; naive UTC on SQLite, timestamptz on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        moment = utc_time(value)
        return moment.replace(tzinfo=None) if moment and dialect.name == "sqlite" else moment

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    # On SQLite the two steps above (ours, then SQLAlchemy's DATETIME text conversion) are done
    # in one, in C where possible: every stored post binds five times, so it shows in a pass.
    # The text is exactly SQLAlchemy's: "2024-06-01 12:00:00.000000".

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        return utc_text

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def from_text(value: str | None) -> datetime | None:
            return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)

        return from_text


def utc_time(value: datetime | None) -> datetime | None:
    """``value`` in UTC; a naive datetime is refused (the store never guesses a time zone)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} given to the store; use UTC")
    return value.astimezone(UTC)


def utc_text(value: datetime | None) -> str | None:
    """A time as SQLite's time columns hold it: UTC text, "2024-06-01 12:00:00.000000"."""
    moment = utc_time(value)
    return None if moment is None else moment.replace(tzinfo=None).isoformat(" ", "microseconds")


def json_text(value: Any) -> str:
    """JSON as stored: UTF-8 text, so categories read as 新媒体 in sqlite3, not \\u65b0..."""
    return json.dumps(value, ensure_ascii=False)


class SourceRow(SQLModel, table=True):
    __tablename__ = "sources"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(sa_type=Text, unique=True, description="http(s) URL or absolute local path")
    name: str | None = Field(default=None, description="configured name; overrides the feed title")
    categories: list[str] = Field(default_factory=list, sa_type=JSON, description="prepended")
    interval_s: int | None = Field(default=None, description="poll interval; NULL: the default")
    comments: bool | None = Field(default=None, description="posts' comments; NULL: the default")
    max_body: int | None = Field(default=None, description="size cap in bytes; NULL: the default")
    site_url: str | None = Field(
        default=None, sa_type=Text, description="the site's home page (OPML htmlUrl)"
    )
    keep_rules: list[str] = Field(
        default_factory=list, sa_type=JSON, description="keep rules: store only what one matches"
    )
    block_rules: list[str] = Field(
        default_factory=list, sa_type=JSON, description="block rules: never store what one matches"
    )
    origin: str = Field(default="config", description="config, cli or opml: who added it")
    enabled: bool = Field(
        default=True, description="false: not polled (410 Gone, retired, by hand)"
    )
    title: str | None = Field(default=None, description="the feed's own title, as last seen")
    created_at: datetime = Field(sa_type=UTCDateTime, description="when the source was added")
    last_checked_at: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="when the last check was saved"
    )
    last_success_at: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="when a check last succeeded"
    )
    next_check_at: datetime | None = Field(
        default=None, sa_type=UTCDateTime, index=True, description="due at; NULL: never checked"
    )
    last_status: str | None = Field(
        default=None, description="ok, not_modified, moved, gone, retry_later, error or bug"
    )
    etag: str | None = Field(default=None, description="ETag of the last stored response")
    last_modified: str | None = Field(default=None, description="Last-Modified of the same")
    error_count: int = Field(default=0, description="failures in a row; 0 after a success")
    last_error: str | None = Field(default=None, description="why the last failure happened")
    last_error_kind: str | None = Field(
        default=None, description="its kind (ingest.errors.ErrorKind): timeout, gone, internal..."
    )
    disabled_reason: str | None = Field(default=None, description="why enabled is false")
    retired_at: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="the config stopped listing it then"
    )
    retry_after_until: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="server asked us to wait until then"
    )
    redirect_url: str | None = Field(default=None, description="permanent redirect target seen")
    redirect_count: int = Field(default=0, description="checks in a row that saw redirect_url")
    previous_urls: list[str] = Field(
        default_factory=list, sa_type=JSON, description="URLs before permanent redirects"
    )
    ttl_s: int | None = Field(default=None, description="feed's <ttl> or Cache-Control max-age")
    posts_per_week: float | None = Field(
        default=None, description="publishing rate from entry dates; NULL: unknown"
    )
    last_filtered: int = Field(
        default=0, description="entries of the last document read that the rules kept out"
    )
    lease_owner: str | None = Field(default=None, description="process processing it now")
    lease_until: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="that claim expires at"
    )


class PostRow(SQLModel, table=True):
    __tablename__ = "posts"
    __table_args__ = (Index("ix_posts_published_at_id", "published_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    content_hash: str = Field(unique=True, description="sha256 hex of title, body and media (§4)")
    title: str = Field(sa_type=Text, description="plain text, never empty (DESIGN §1)")
    categories: list[str] = Field(
        default_factory=list, sa_type=JSON, description="JSON array, in the post's order"
    )
    headimg: str | None = Field(default=None, sa_type=Text, description="first image URL")
    author: str = Field(sa_type=Text, description="entry author, else feed author or name")
    comments: bool = Field(default=False, description="the source's comments setting")
    published_at: datetime = Field(sa_type=UTCDateTime, description="the date key, UTC")
    thumbnail: str | None = Field(default=None, sa_type=Text, description="same as headimg")
    body: str = Field(sa_type=Text, description="sanitized HTML")
    link: str | None = Field(default=None, sa_type=Text, description="link where first seen")
    guid: str | None = Field(default=None, sa_type=Text, description="guid where first seen")
    media: list[str] = Field(
        default_factory=list,
        sa_type=JSON,
        description="enclosure and media URLs, hashed with title and body (§4); [] before 0005",
    )
    source_categories: int = Field(
        default=0,
        description="how many leading categories are the source's own: the export's folders",
    )
    source_id: int | None = Field(
        default=None,
        foreign_key="sources.id",
        ondelete="SET NULL",
        index=True,
        description="the source that first stored it",
    )
    first_seen_at: datetime = Field(sa_type=UTCDateTime, description="when first stored")
    updated_at: datetime = Field(sa_type=UTCDateTime, description="last change of content")
    revision: int = Field(default=1, description="1, plus one per edit at its source")


class SearchBacklogRow(SQLModel, table=True):
    """Posts whose search index rows are missing or stale (new or revised since indexed).

    Ingestion only adds ids here; ``storage.search`` indexes them in batches and removes them,
    so storing posts never waits for the index.
    """

    __tablename__ = "search_backlog"

    post_id: int = Field(
        primary_key=True,
        foreign_key="posts.id",
        ondelete="CASCADE",
        sa_column_kwargs={"autoincrement": False},
    )


class SightingRow(SQLModel, table=True):
    __tablename__ = "sightings"
    __table_args__ = (UniqueConstraint("source_id", "entry_key", name="uq_sightings_source_key"),)

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="posts.id", ondelete="CASCADE", index=True)
    source_id: int = Field(foreign_key="sources.id", ondelete="CASCADE")
    entry_key: str = Field(sa_type=Text, description="guid, else link, else content hash")
    guid: str | None = Field(default=None, sa_type=Text, description="the entry's guid here")
    link: str | None = Field(default=None, sa_type=Text, description="the entry's link here")
    content_hash: str = Field(description="hash of the entry as this source last served it")
    first_seen_at: datetime = Field(sa_type=UTCDateTime, description="first seen at this source")
    last_seen_at: datetime = Field(sa_type=UTCDateTime, description="last seen at this source")


class HookDeliveryRow(SQLModel, table=True):
    """The outbox: one row per delivery of a post's event to a hook (``[[hooks]]``).

    Written in the transaction that stores the post (``storage.apply``), so a delivery exists
    exactly when its post does; claimed, settled and counted by ``storage.outbox``.
    """

    __tablename__ = "hook_deliveries"
    __table_args__ = (
        UniqueConstraint("post_id", "revision", "hook", name="uq_hook_deliveries_delivery"),
        Index("ix_hook_deliveries_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="posts.id", ondelete="CASCADE")
    revision: int = Field(description="the post's revision the event is about")
    hook: str = Field(description="the hook's name in [[hooks]]")
    event: str = Field(description="new or updated")
    status: str = Field(default="pending", description="pending, done or failed (given up)")
    attempts: int = Field(default=0, description="attempts made so far")
    next_attempt_at: datetime = Field(
        sa_type=UTCDateTime, description="due at; while claimed, when the claim expires"
    )
    claimed_by: str | None = Field(default=None, description="process delivering it now")
    last_error: str | None = Field(default=None, description="why the last attempt failed")
    last_attempt_at: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="when the last attempt ended"
    )
    created_at: datetime = Field(sa_type=UTCDateTime, description="when the post was stored")
    delivered_at: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="when the hook took it"
    )


class SubscriptionRow(SQLModel, table=True):
    """A WebSub subscription of a source whose feed advertises a hub (``storage.websub``)."""

    __tablename__ = "websub_subscriptions"

    id: int | None = Field(default=None, primary_key=True)
    source_id: int | None = Field(
        default=None,
        foreign_key="sources.id",
        ondelete="SET NULL",
        unique=True,
        description="the source; NULL once removed (then unsubscribed and forgotten)",
    )
    hub: str = Field(sa_type=Text, description="the hub's URL, as the feed advertised it")
    topic: str = Field(sa_type=Text, description="the topic URL: the feed's rel=self")
    callback_key: str = Field(unique=True, description="random; the callback URL's last part")
    secret: str = Field(description="hub.secret: HMAC key of pushed content (sensitive)")
    state: str = Field(description="pending, active, denied or unsubscribed")
    requested: str | None = Field(
        default=None, description="subscribe or unsubscribe: asked, verification awaited"
    )
    requested_at: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="when the last request was sent"
    )
    lease_s: int = Field(description="hub.lease_seconds asked for")
    lease_until: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="active until then (the hub's lease)"
    )
    answered_at: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="when the hub last verified or denied"
    )
    last_error: str | None = Field(
        default=None, sa_type=Text, description="the hub's refusal or denial, as last met"
    )
    created_at: datetime = Field(sa_type=UTCDateTime, description="when the hub was first seen")


class IdleMarkRow(SQLModel, table=True):
    """The idle mark (``storage.idle``): at most one row, left by the last ``ingest run`` on a
    SQLite store and erased by triggers on any change to ``sources`` or ``hook_deliveries``."""

    __tablename__ = "idle_marks"

    id: int | None = Field(default=None, primary_key=True)
    fingerprint: str = Field(description="hash of the settings the pass ran with")
    idle_until: float | None = Field(
        default=None,
        description="when a source or delivery next comes due (Unix time); NULL: never by itself",
    )
    deliveries_pending: int = Field(description="deliveries of the configured hooks waiting")


# The Core tables behind the models, for queries; SQLModel types ``__table__`` loosely.
SOURCES = SourceRow.__table__  # type: ignore[attr-defined]
POSTS = PostRow.__table__  # type: ignore[attr-defined]
SIGHTINGS = SightingRow.__table__  # type: ignore[attr-defined]
BACKLOG = SearchBacklogRow.__table__  # type: ignore[attr-defined]
DELIVERIES = HookDeliveryRow.__table__  # type: ignore[attr-defined]
SUBSCRIPTIONS = SubscriptionRow.__table__  # type: ignore[attr-defined]
T = SOURCES.c
"""The sources table's columns, for the many queries over them (claims, state, CLI sources)."""
