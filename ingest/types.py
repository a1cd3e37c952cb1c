"""Boundary types passed between the pipeline's stages.

Every ``datetime`` here is timezone-aware UTC; producers convert at the edge (parser, store) so
consumers never guess. All types are frozen: a stage hands its result on and cannot change what
another stage already decided.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from ingest.errors import ErrorKind, SourceError
from ingest.urls import is_http_url, redact_text

DEFAULT_MAX_BODY = 16 * 1024 * 1024
"""Response size cap after decompression (DESIGN §3): large enough for any real feed."""


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """What the user asked for about one source, from the config file or ``feeds add``.

    ``None`` means "use the default from ``[defaults]``" so a later change of the default
    reaches every source that did not set its own value.
    """

    url: str
    name: str | None = None
    categories: tuple[str, ...] = ()
    interval_s: int | None = None
    comments: bool | None = None
    max_body: int | None = None
    site_url: str | None = None
    """The site's home page (OPML ``htmlUrl``): kept to be exported, never a setting."""
    keep: tuple[str, ...] = ()
    """Keep rules (``ingest.filters``): when there are any, only entries one matches are stored."""
    block: tuple[str, ...] = ()
    """Block rules: an entry one matches is not stored."""


@dataclass(frozen=True, slots=True)
class RawEntry:
    """One entry as a feed format carries it, before any of our rules are applied.

    ``body_html`` and ``title`` are untrusted markup; ``base`` is the URL relative links in the
    body are resolved against (xml:base or the document's URL), empty when unknown.
    """

    guid: str | None
    link: str | None
    title: str
    title_is_html: bool
    body_html: str
    base: str
    author: str | None
    published: datetime | None
    updated: datetime | None
    tags: tuple[str, ...]
    images: tuple[str, ...]
    """Image URLs from media:thumbnail, media:content, enclosures or JSON Feed ``image``."""
    media: tuple[str, ...] = ()
    """What the entry carries besides its body: enclosure, media:content and JSON Feed
    attachment URLs of any type, in document order (part of its content, DESIGN §4)."""
    unreadable_dates: tuple[str, ...] = ()
    """Date texts the entry carried that could not be read (``ingest.digest.dates``)."""


@dataclass(frozen=True, slots=True)
class RawFeed:
    """A parsed feed document: its own metadata and its entries, in document order."""

    title: str | None
    link: str | None
    author: str | None
    ttl_s: int | None
    entries: tuple[RawEntry, ...]
    bad_entries: tuple[str, ...] = ()
    """One reason per entry the parser had to drop."""
    hub: str | None = None
    """The WebSub hub the document advertises (``<link rel="hub">``, JSON Feed ``hubs``)."""
    self_url: str | None = None
    """The document's own URL as it states it (``rel="self"``, JSON Feed ``feed_url``): the
    WebSub topic."""


@dataclass(frozen=True, slots=True)
class Post:
    """A normalized entry in the post schema of DESIGN §1, plus its provenance."""

    title: str
    categories: tuple[str, ...]
    headimg: str | None
    author: str
    comments: bool
    published: datetime
    thumbnail: str | None
    body: str
    guid: str | None
    link: str | None
    content_hash: str
    media: tuple[str, ...] = ()
    """Enclosure and media URLs, hashed with title and body (DESIGN §4)."""
    key: str | None = None
    """The entry's identity when its guid or link alone is shared with a different entry of
    the same document (``ingest.identity.keyed``); None: the usual rule of ``entry_key``."""
    source_categories: int = 0
    """How many of ``categories``, from the first, are its source's own rather than the entry's
    tags: the configured categories and the feed's name; for a front-matter file, its own
    categories too (they are the folders it was filed in). The folders of a Hexo export."""

    @property
    def entry_key(self) -> str:
        """What identifies this entry within its source across edits (DESIGN §4): guid, else
        link, else content hash, unless the document made it fall back further (``key``)."""
        return self.key or self.guid or self.link or self.content_hash

    def __reduce__(self) -> tuple[type[Post], tuple[Any, ...]]:
        """Pickled as constructor arguments: every post crosses from a worker process, and the
        default for frozen slotted dataclasses sets each field by name, twice as slow to load."""
        return Post, tuple(getattr(self, name) for name in self.__slots__)


@dataclass(frozen=True, slots=True)
class FilteredEntry:
    """An entry a keep or block rule kept out of the store, and ``rule``, which one (or which
    keep rules it matched none of), as ``ingest.filters.Rejection`` words it."""

    guid: str | None
    link: str | None
    title: str
    rule: str


@dataclass(frozen=True, slots=True)
class Digest:
    """Everything one source's document yielded: its posts and what had to be skipped."""

    feed_title: str | None
    posts: tuple[Post, ...]
    skipped: tuple[str, ...] = ()
    ttl_s: int | None = None
    published_dates: tuple[datetime, ...] = ()
    """The dates entries really carried (undated entries excluded): the publishing rate's input."""
    unreadable_dates: tuple[str, ...] = ()
    """Date texts that could not be read: those entries fell back to their updated date or to
    the first-seen time (DESIGN §1). Counted in the log as ``dates_unreadable``."""
    filtered: tuple[FilteredEntry, ...] = ()
    """Entries the keep and block rules kept out: not in ``posts``, never stored."""
    hub: str | None = None
    """The WebSub hub the document advertises, and its ``self_url``: see ``RawFeed``."""
    self_url: str | None = None


@dataclass(frozen=True, slots=True)
class SourceState:
    """A source as the store knows it when a pass starts processing it."""

    id: int
    url: str
    spec: SourceSpec
    enabled: bool
    title: str | None
    etag: str | None
    last_modified: str | None
    last_checked_at: datetime | None
    next_check_at: datetime | None
    error_count: int
    retry_after_until: datetime | None
    disabled_reason: str | None
    redirect_url: str | None
    redirect_count: int
    ttl_s: int | None
    posts_per_week: float | None = None
    push_until: datetime | None = None
    """When the lease of the source's active WebSub subscription ends (None: no push): until
    then its hub pushes new content and polling slows down (``scheduler.policy``)."""

    @property
    def is_remote(self) -> bool:
        return is_http_url(self.url)


@dataclass(frozen=True, slots=True)
class Fetched:
    """A new document: a 200 whose validators differ from the stored ones.

    ``url`` is where the document was found (after redirects); ``permanent_redirect`` is where
    a 301/308 sent us (the stored URL moves only after two checks in a row see the same one);
    ``max_age_s`` comes from Cache-Control or Expires; ``charset`` from Content-Type.
    """

    url: str
    document: bytes
    etag: str | None = None
    last_modified: str | None = None
    charset: str | None = None
    permanent_redirect: str | None = None
    max_age_s: int | None = None
    hub: str | None = None
    """The WebSub hub and topic the response's ``Link`` header names (``rel="hub"``,
    ``rel="self"``), absolute."""
    self_url: str | None = None


@dataclass(frozen=True, slots=True)
class NotModified:
    """A 304, or a 200 carrying the stored validators: nothing to parse, the body unread."""

    url: str
    permanent_redirect: str | None = None
    max_age_s: int | None = None


@dataclass(frozen=True, slots=True)
class Gone:
    """410 Gone: the server says the feed is gone for good, and the source gets disabled."""

    reason: str
    kind: ClassVar[ErrorKind] = ErrorKind.GONE


@dataclass(frozen=True, slots=True)
class RetryLater:
    """429 or 503: the server asked us to wait, ``until`` then when it said (``Retry-After``,
    as given: the schedule bounds it)."""

    reason: str
    until: datetime | None = None
    kind: ClassVar[ErrorKind] = ErrorKind.RETRY_LATER


@dataclass(frozen=True, slots=True)
class Failed:
    """The check got nothing usable: ``kind`` says why, ``reason`` says it to the user (its
    URLs redacted; ``of`` makes one from the error that was raised)."""

    kind: ErrorKind
    reason: str

    @classmethod
    def of(cls, error: SourceError) -> Failed:
        return cls(error.kind, error.reason)

    @classmethod
    def saying(cls, kind: ErrorKind, reason: str) -> Failed:
        """A failure met outside any ``SourceError``, its ``reason`` redacted as theirs are."""
        return cls(kind, redact_text(reason))

    @classmethod
    def bug(cls, error: BaseException) -> Failed:
        """A bug in feed-ingest met while checking a source: kind internal, never the source's
        fault."""
        return cls.saying(
            ErrorKind.INTERNAL,
            f"internal error {type(error).__name__}: {error} (a bug in feed-ingest; please report "
            "it with this feed)",
        )


Failure = Gone | RetryLater | Failed
"""A check that got no document: what ``scheduler.policy.after_failure`` takes."""
FetchResult = Fetched | NotModified | Failure
"""Everything a fetch can end in: expected outcomes are values, never exceptions."""


@dataclass(frozen=True, slots=True)
class HubLink:
    """A WebSub hub a source advertises, and the topic (the feed's URL) to subscribe to there."""

    hub: str
    topic: str


class SubscriptionState(StrEnum):
    """Where a WebSub subscription stands, as the hub last said (``state`` in the store)."""

    PENDING = "pending"
    """Never confirmed yet: asked, or about to be."""
    ACTIVE = "active"
    """The hub verified our intent; it pushes until ``lease_until``."""
    DENIED = "denied"
    """The hub refused the subscription (``hub.mode=denied``); asked again later."""
    UNSUBSCRIBED = "unsubscribed"
    """The hub verified our unsubscription: the source left or was disabled."""


class HubMode(StrEnum):
    """What we ask a hub (``hub.mode``)."""

    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"


@dataclass(frozen=True, slots=True)
class Subscription:
    """A WebSub subscription as the store knows it.

    ``key`` names it in its callback URL; ``secret`` signs what the hub pushes (``hub.secret``).
    ``requested`` is the mode of the request sent at ``requested_at`` whose verification is
    awaited (None: none is); ``answered_at`` is when the hub last verified or denied.
    ``source_id`` is None once the source is removed (then it is unsubscribed, and forgotten);
    ``source_enabled`` says whether its source is polled.
    """

    id: int
    source_id: int | None
    hub: str
    topic: str
    key: str
    secret: str
    state: SubscriptionState
    requested: HubMode | None
    requested_at: datetime | None
    lease_s: int
    lease_until: datetime | None
    answered_at: datetime | None
    last_error: str | None
    created_at: datetime
    source_enabled: bool


class PushEvent(StrEnum):
    """What a WebSub callback did: the vocabulary of its log events and metrics."""

    INGESTED = "ingested"
    """Signed content handed to the pipeline."""
    BAD_SIGNATURE = "bad_signature"
    """Content whose ``X-Hub-Signature`` did not match: answered 2xx, dropped (WebSub §8)."""
    UNSIGNED = "unsigned"
    """Content without a usable ``X-Hub-Signature``: answered 2xx, dropped."""
    TOO_LARGE = "too_large"
    """Content past the source's ``max_body``: refused (413)."""
    UNKNOWN = "unknown"
    """Content or a verification for a callback no subscription has: 410 or 404."""
    VERIFIED = "verified"
    """A verification of intent we asked for: the challenge echoed."""
    REFUSED = "refused"
    """A verification for a mode or topic we did not ask for: 404."""
    DENIED = "denied"
    """The hub denied a subscription (``hub.mode=denied``)."""


class SourceStatus(StrEnum):
    """How processing a source went: the fixed vocabulary of logs, metrics and ``stats``."""

    OK = "ok"
    NOT_MODIFIED = "not_modified"
    MOVED = "moved"
    GONE = "gone"
    RETRY_LATER = "retry_later"
    ERROR = "error"
    BUG = "bug"
    """A bug in feed-ingest met while checking the source: never reported as its fault."""

    @property
    def succeeded(self) -> bool:
        return self in (SourceStatus.OK, SourceStatus.NOT_MODIFIED, SourceStatus.MOVED)


@dataclass(frozen=True, slots=True)
class SourceUpdate:
    """The new values of a source's state columns after one check (see ``scheduler.policy``).

    Every field is the value to store, carried over from ``SourceState`` where nothing changed,
    so the store writes it as is.
    """

    status: SourceStatus
    checked_at: datetime
    next_check_at: datetime
    url: str
    enabled: bool
    title: str | None
    etag: str | None
    last_modified: str | None
    error_count: int
    last_error: str | None
    last_error_kind: ErrorKind | None
    retry_after_until: datetime | None
    disabled_reason: str | None
    redirect_url: str | None
    redirect_count: int
    ttl_s: int | None
    posts_per_week: float | None


@dataclass(frozen=True, slots=True)
class StoredPost:
    """A post read back from the store, with its id, first source and revision count."""

    id: int
    post: Post
    source: str | None
    """The URL of the source that first stored it; None once that source is removed."""
    revision: int
    source_id: int | None
    """The id of that source."""
    first_seen: datetime
    """When it was first stored: never changes, edits included."""
    updated: datetime
    """When its content last changed (first stored, or revised at its source)."""


@dataclass(frozen=True, slots=True)
class StoredSource:
    """A source as the store lists it: its settings, who added it, and the feed's own title."""

    id: int
    spec: SourceSpec
    origin: str
    enabled: bool
    title: str | None
    created_at: datetime
    previous_urls: tuple[str, ...] = ()
    """URLs it was permanently redirected away from, oldest first."""
    disabled_reason: str | None = None
    retired_at: datetime | None = None
    """When the config stopped listing it (and so it stopped being polled); None otherwise."""

    @property
    def label(self) -> str:
        """What to call it: the configured name, else the feed's title, else its URL."""
        return self.spec.name or self.title or self.spec.url

    @property
    def retired(self) -> bool:
        """Whether it is not polled because it left the config (``SourcesPlan.retire``)."""
        return self.retired_at is not None and not self.enabled


@dataclass(frozen=True, slots=True)
class SourcesPlan:
    """What applying the config does to the store's sources (``ingest.sources.plan_config``):
    sources to add, settings to change (by id), ids to retire (not polled any more, posts
    kept) and retired ids to poll again, since the config lists them again."""

    add: tuple[SourceSpec, ...] = ()
    update: tuple[tuple[int, SourceSpec], ...] = ()
    retire: tuple[int, ...] = ()
    revive: tuple[int, ...] = ()


class SourcesPlanner(Protocol):
    """Plans applying ``wanted`` (the config's sources) to ``stored`` (every source).

    Called by the store inside the write transaction that applies the plan, like ``Decider``.
    """

    def __call__(
        self, stored: Sequence[StoredSource], wanted: Sequence[SourceSpec]
    ) -> SourcesPlan: ...


class DuplicateFinder(Protocol):
    """The stored source that already is ``url`` (``ingest.sources.duplicate_of``), or None."""

    def __call__(self, stored: Sequence[StoredSource], url: str) -> StoredSource | None: ...


@dataclass(frozen=True, slots=True)
class Due:
    """Which sources a pass wants from the store (``scheduler.policy.is_due`` is the rule).

    ``now`` is the pass's clock. ``force`` (``ingest run --all``) wants every enabled source
    outside a server's ``Retry-After``. ``fresh_since`` is when a one-shot pass started: a
    source checked since then is done for this pass, so claiming again never repeats one.
    """

    now: datetime
    force: bool = False
    fresh_since: datetime | None = None
    only: frozenset[int] | None = None
    """``ingest run ID...``: just these sources (with ``force``: due or not)."""


@dataclass(frozen=True, slots=True)
class IdleMark:
    """What the last pass left in the store: the settings it ran with (``fingerprint``) and
    when its first source or hook delivery comes due (None: none by itself). See
    ``scheduler.idle``."""

    fingerprint: str
    until: datetime | None
    deliveries_pending: int = 0
    """Deliveries of the configured hooks waiting, as the pass's summary counted them."""


class IdleHorizon(Protocol):
    """When a store next has work, from its sources and its first pending delivery
    (``scheduler.idle.idle_until``, handed to ``Store.mark_idle``)."""

    def __call__(
        self, states: Sequence[SourceState], first_delivery: datetime | None
    ) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """A process holding leases on sources, as the store shows it."""

    owner: str
    sources: int
    until: datetime


class Change(StrEnum):
    """What storing one entry did; also the vocabulary of run summaries and metrics."""

    NEW = "new"
    UPDATED = "updated"
    DUPLICATE = "duplicate"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class KnownSighting:
    """A source's previous sighting of an entry: the post it points to, the hash the entry had
    and the hash that post has now (another source's edit may have changed it since)."""

    post_id: int
    content_hash: str
    post_hash: str


@dataclass(frozen=True, slots=True)
class EntryIntent:
    """What to store for one entry.

    The sighting ``(source, post.entry_key)`` then points at: for ``NEW`` and ``DUPLICATE``, the
    post whose hash is ``post.content_hash``; for ``UPDATED``, post ``revise``, overwritten with
    ``post``; for ``UNCHANGED``, the post it already pointed at.
    """

    change: Change
    post: Post
    revise: int | None = None


class Decider(Protocol):
    """Says what each of one source's posts is (``ingest.identity.decide``).

    The store calls it inside the write transaction that stores the check, between reading
    what it knows (``sightings``: this source's, by entry key; ``stored_hashes``: those hashes
    of ``posts`` already stored) and writing the answer (DESIGN §4). It is passed in rather
    than imported so that the store sits below the rules it applies.
    """

    def __call__(
        self,
        posts: Sequence[Post],
        sightings: Mapping[str, KnownSighting],
        stored_hashes: AbstractSet[str],
    ) -> list[EntryIntent]: ...


class HookRouter(Protocol):
    """The names of the hooks (``[[hooks]]``) that want ``event`` of ``post``, stored from
    ``source`` (``ingest.hooks.router``).

    Called by the store inside the write transaction that stores the post, so a delivery is
    queued in the same commit as what it announces (the outbox); passed in, like ``Decider``.
    """

    def __call__(self, event: Change, post: Post, source: SourceState) -> Sequence[str]: ...


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery claimed from the outbox: ``event`` of revision ``revision`` of ``post`` to
    hook ``hook``, after ``attempts`` failed attempts. ``post`` is as stored now."""

    id: int
    hook: str
    event: Change
    revision: int
    attempts: int
    post: StoredPost
    claimed_before_by: str | None = None
    """The process whose claim on it expired unsettled (it died, or was cut off, while
    delivering): this attempt may repeat one the hook already took."""


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """How one attempt of delivery ``id`` went: ``error`` None when the hook took it; else the
    next attempt ``retry_in`` seconds from now, or None when the delivery is given up."""

    id: int
    error: str | None = None
    retry_in: float | None = None


class DeliveryStatus(StrEnum):
    """What an attempt came to: the vocabulary of metrics and summaries."""

    DELIVERED = "delivered"
    RETRY = "retry"
    """Failed; tried again later."""
    FAILED = "failed"
    """Failed for the last time: given up."""


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """One attempt of one delivery, as a pass reports it."""

    hook: str
    delivery_id: str
    status: DeliveryStatus
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Check:
    """One check of one source, to store: the posts it found and the source's new state."""

    state: SourceState
    posts: Sequence[Post]
    change: SourceUpdate
    now: datetime
    owner: str | None = None
    """Who claimed the source: the check is stored only while that lease is held."""
    filtered: int | None = None
    """Entries of the new document the keep and block rules kept out; None when there was no
    new document (the count of the last one stays on the source)."""


@dataclass(frozen=True, slots=True)
class SourceOutcome:
    """How one source went in one pass: what the summary, the log and the metrics report.

    ``lease_lost``: another process took the source over before this check was saved, so the
    check was dropped (that process stores its own).
    """

    source_id: int
    source: str
    status: SourceStatus
    counts: Mapping[Change, int]
    skipped: int
    error: str | None
    duration_s: float
    stored: bool = True
    """Whether the check was written (not when the store failed or the lease was lost)."""
    lease_lost: bool = False
    error_kind: ErrorKind | None = None
    """The kind of ``error``; ``internal`` (status ``bug``) is a bug in feed-ingest."""
    filtered: int = 0
    """Entries the keep and block rules kept out of the store."""
    hub: HubLink | None = None
    """The WebSub hub the source advertised in this check, if any (``ingest.websub.rules``)."""

    @classmethod
    def of_bug(
        cls, state: SourceState, failure: Failed, *, duration_s: float = 0.0, stored: bool = False
    ) -> SourceOutcome:
        """The outcome of a check that met a bug in feed-ingest (``failure``, kind internal)."""
        return cls(
            source_id=state.id,
            source=state.url,
            status=SourceStatus.BUG,
            counts={},
            skipped=0,
            error=failure.reason,
            duration_s=duration_s,
            stored=stored,
            error_kind=failure.kind,
        )

    @property
    def is_bug(self) -> bool:
        return self.status is SourceStatus.BUG

    @property
    def is_failure(self) -> bool:
        """Whether the source failed this check on its own account or the store's (its server,
        network or document, or a store that refused the check): never a bug, nor a check
        another process took over."""
        return not self.status.succeeded and not self.is_bug and not self.lease_lost


@dataclass(slots=True)
class RunSummary:
    """Every outcome of a pass, in the order sources finished.

    ``interrupted`` names the signal that cut the pass short; ``held_elsewhere`` lists the
    processes that held sources this pass wanted, which it therefore left alone; ``retired``
    and ``revived`` are the sources the config stopped and started listing again.
    """

    outcomes: list[SourceOutcome] = field(default_factory=list)
    interrupted: signal.Signals | None = None
    held_elsewhere: list[LeaseHolder] = field(default_factory=list)
    retired: list[StoredSource] = field(default_factory=list)
    revived: list[StoredSource] = field(default_factory=list)
    deliveries: list[DeliveryOutcome] = field(default_factory=list)
    """Hook delivery attempts made at the end of the pass (``ingest.pipeline.deliver``)."""
    deliveries_pending: int = 0
    """Deliveries still waiting when the pass ended: retries not due yet, or past its budget."""

    @property
    def succeeded(self) -> list[SourceOutcome]:
        """Sources whose check went well and was saved by this pass."""
        return [o for o in self.outcomes if o.status.succeeded and not o.lease_lost]

    @property
    def failed(self) -> list[SourceOutcome]:
        """Sources whose check failed (``SourceOutcome.is_failure``)."""
        return [o for o in self.outcomes if o.is_failure]

    @property
    def bugs(self) -> list[SourceOutcome]:
        """Sources whose check met a bug in feed-ingest: never counted as their failure."""
        return [o for o in self.outcomes if o.is_bug]

    @property
    def lost(self) -> list[SourceOutcome]:
        return [o for o in self.outcomes if o.lease_lost]

    def total(self, change: Change) -> int:
        return sum(o.counts.get(change, 0) for o in self.outcomes)

    @property
    def filtered(self) -> int:
        """Entries the keep and block rules kept out of the store, over every source."""
        return sum(o.filtered for o in self.outcomes)

    @property
    def last_attempts(self) -> list[DeliveryOutcome]:
        """Each delivery attempted in the run, by its last attempt (a retry within the run
        stands for the attempts before it)."""
        return list({o.delivery_id: o for o in self.deliveries}.values())
