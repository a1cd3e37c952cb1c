"""The one error tree of feed-ingest.

::

    IngestError                   every message names the file, feed or setting it is about
    ├── ConfigError               invalid config file, environment variable or CLI argument (exit 2)
    │   └── OpmlError             an OPML file cannot be imported; nothing of it is stored
    ├── SourceError               one source failed; the rest of the run goes on
    │   ├── FetchError            the server or the network failed us (status, timeout, size, ...)
    │   └── DocumentError         the bytes are not a feed or post we can use
    ├── EntryError                one entry is unusable; it is skipped and counted, the feed goes on
    ├── SourceChoiceError         a source named on the command line is unknown, already
    │                             stored, or cannot be checked as asked (exit 1)
    ├── StoreError                the store cannot be opened, migrated or written
    │   └── NoStoreError          a command that only reads found no store where it looked
    ├── ExportError               an exported file cannot be written
    └── FeedChoiceError           a merged feed names a source or category that has no posts
                                  (exit 1; 404 when served)

What is data and what is a bug:

- an expected outcome of a check is a value, never an exception: the fetcher returns ``Gone``
  (410), ``RetryLater`` (429/503) and ``Failed`` (every other failure of the server, the network
  or the fetch's limits) as an ``ingest.types.FetchResult``. A ``SourceError`` raised on the way
  (a document that is no feed, a missing local file, a dead worker) becomes a ``Failed`` of its
  kind in one place, the pipeline's ``Pass._check``. Each has an ``ErrorKind``, kept on the
  source (``last_error_kind``) and counted in the metrics (``ingest_fetch_errors_total{kind}``);
- a failure to write a check is ``ErrorKind.STORE``: the store's fault, not the source's;
- any other exception while checking a source is a bug in feed-ingest: logged with its
  traceback (``source_crashed``), recorded with ``ErrorKind.INTERNAL`` so the source backs off,
  reported with the status ``bug`` (never as the feed's fault), counted in
  ``ingest_bugs_total``, and ``ingest run`` exits 70. Anything escaping a command is a bug too,
  and fails loudly.

Errors cross process boundaries (documents are parsed in worker processes), so each one pickles
with all its attributes.

A message is printed, logged and kept on the source (``last_error``), so the URLs in it are
redacted where it is made (``ingest.urls.redacted``): a source's ``user:pass@`` and tokens
never reach a terminal, a log or the store through an error.
"""

from __future__ import annotations

from enum import StrEnum

from ingest.urls import redact_text, redacted


class ErrorKind(StrEnum):
    """Why a source failed a check: the one vocabulary of ``last_error_kind``, logs and metrics.

    The values are stored on sources and shown, so they never change; a new cause gets a new
    member. Every kind but ``INTERNAL`` is an expected outcome (data about the source); ``INTERNAL``
    is a bug in feed-ingest.
    """

    # The network and the server (ingest.fetch)
    TIMEOUT = "timeout"
    """No complete answer within ``[fetch] timeout``."""
    NETWORK = "network"
    """The request failed in a way no other kind names."""
    DNS = "dns"
    """The host name does not resolve."""
    TLS = "tls"
    """The TLS handshake or certificate check failed."""
    REFUSED = "refused"
    """Nothing listens at the address."""
    PROTOCOL = "protocol"
    """The server broke HTTP."""
    BLOCKED = "blocked"
    """The address guard refused the host, or a redirect left http(s)."""
    TOO_LARGE = "too_large"
    """The body, a local file or a local folder is past its cap."""
    REDIRECTS = "redirects"
    """Too many redirects, or one without a usable Location."""
    BAD_URL = "bad_url"
    """The stored URL itself cannot be fetched."""
    HTTP_STATUS = "http_status"
    """A status that is neither a document nor one of the statuses below (404, 500...)."""
    GONE = "gone"
    """410 Gone: the source is disabled (a ``Gone`` outcome)."""
    RETRY_LATER = "retry_later"
    """429 or 503: the server asked us to wait (a ``RetryLater`` outcome)."""
    DECODING = "decoding"
    """The body's Content-Encoding is unknown or its compressed bytes are corrupt."""
    # The document (ingest.digest.parse, ingest.digest.document)
    NOT_A_FEED = "not_a_feed"
    HTML_PAGE = "html_page"
    EMPTY = "empty"
    NO_ENTRIES = "no_entries"
    """Every entry or post was unusable."""
    BAD_FRONT_MATTER = "bad_front_matter"
    # Local sources (ingest.fetch.local)
    NOT_FOUND = "not_found"
    NOT_REGULAR = "not_regular"
    """A FIFO, socket or device: never opened."""
    UNREADABLE = "unreadable"
    # Digesting (ingest.pipeline.workers)
    TOO_SLOW = "too_slow"
    """Digesting ran past its time limit."""
    WORKER_CRASHED = "worker_crashed"
    """The worker process digesting the document died, twice."""
    # Ours
    STORE = "store"
    """The check could not be written to the store."""
    INTERNAL = "internal"
    """An unexpected exception: a bug in feed-ingest, never the source's fault."""


class IngestError(Exception):
    """Base of every error feed-ingest raises on purpose."""

    def __reduce__(self) -> tuple[object, ...]:
        # Exception pickles as cls(*args); our constructors take other arguments, so rebuild
        # from a blank instance and the attributes instead.
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(
    cls: type[IngestError], args: tuple[object, ...], state: dict[str, object]
) -> IngestError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ConfigError(IngestError):
    """A setting is invalid; ``where`` is the key, variable or option, ``reason`` what to fix."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = redact_text(where)
        self.reason = redact_text(reason)
        super().__init__(f"{self.where}: {self.reason}")


class OpmlError(ConfigError):
    """The OPML file at ``where`` is not one we can import; ``reason`` says what to fix.

    Raised before anything is written, so a refused file changes nothing in the store.
    """


class SourceError(IngestError):
    """One source could not be processed this time.

    ``kind`` is a short machine-readable cause (``timeout``, ``http_status``, ``not_a_feed``...)
    kept on the source and counted in metrics; ``reason`` is the sentence shown to the user.
    ``source`` is the source as shown, its credentials redacted.
    """

    def __init__(self, source: str, reason: str, *, kind: ErrorKind) -> None:
        self.source = redacted(source)
        self.reason = redact_text(reason)
        self.kind = kind
        super().__init__(f"{self.source}: {self.reason}")


class FetchError(SourceError):
    """The source's server or the network did not give us a document.

    Raised inside ``ingest.fetch`` only: the fetcher returns it as a ``Failed`` value.
    """


class DocumentError(SourceError):
    """The document was read but holds no usable feed or post."""


class EntryError(IngestError):
    """One entry of a document cannot be made into a post (no title and no text, bad date...)."""


class SourceChoiceError(IngestError):
    """A source named on the command line (an id, a URL or a path) is unknown, is already
    stored, or cannot be checked as asked; the message names it and says what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(redact_text(message))


class StoreError(IngestError):
    """The store at ``url`` cannot be used; the message says why.

    ``url`` is the store's URL as shown, its password hidden (``storage.engine`` renders it).
    """

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"store {url}: {reason}")
        self.url = url
        self.reason = reason


class NoStoreError(StoreError):
    """There is no store at ``url`` and the command that asked only reads, so none is made:
    a mistyped ``--db`` or ``INGEST_DB`` must not look like an empty store."""


class ExportError(IngestError):
    """A post could not be written to the export folder."""


class FeedChoiceError(IngestError):
    """A merged feed (``ingest export --format``, ``/feeds/...``) asks for a source that does
    not exist or a category no stored post has; the message names it."""
