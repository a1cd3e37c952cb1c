"""The merged feeds over HTTP: the WSGI app ``ingest serve`` mounts at ``/feeds/``.

::

    /feeds/all.atom                  /feeds/all.json
    /feeds/category/<name>.atom      /feeds/category/<name>.json     (UTF-8, percent-encoded;
                                                                      any case: tech is Tech)
    /feeds/source/<id>.atom          /feeds/source/<id>.json         (the id of `feeds list`)

Each holds the newest ``DEFAULT_LIMIT`` posts (``ingest.publish.merged``). Answers carry an
``ETag`` (a hash of the body: the document is a function of the posts, so an unchanged feed
keeps its tag) and ``Last-Modified`` (the feed's newest change), and a conditional GET gets
``304 Not Modified`` (RFC 9110 §13: ``If-None-Match`` first; ``If-Modified-Since`` only without
it). An unknown source or a category no post has is a one-line ``404``; a store that does not
answer is ``503``. The self link is the URL the request was made to.

Called from the HTTP endpoint's threads: each request reads the store in read transactions of
its own (``storage.store``: reads are safe from any thread and never wait for the writer). At
most ``READERS`` requests read at once, so a burst of feed readers never takes every pooled
connection from ``/healthz``; one that waits ``BUSY_WAIT_S`` for its turn gets ``503`` with a
``Retry-After``.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from wsgiref.util import request_uri

from ingest.errors import FeedChoiceError, StoreError
from ingest.publish.formats import DEFAULT_LIMIT, FeedFormat
from ingest.publish.merged import MergedFeed, Selection, merged_feed
from ingest.publish.syndicate import render_feed
from storage import Store

PREFIX = "/feeds/"
READERS = 4
"""Feed requests reading the store at once: below the connection pool's 5 (SQLAlchemy's
default), leaving one for health checks."""
BUSY_WAIT_S = 5.0
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_EXTENSIONS = {"atom": FeedFormat.ATOM, "json": FeedFormat.JSON_FEED}
_SOURCE_ID = re.compile(r"[0-9]{1,18}")
_TEXT = ("Content-Type", "text/plain; charset=utf-8")
_NOT_FOUND = "404 Not Found"
_BUSY = "503 Service Unavailable"
_USAGE = (
    "not found: try /feeds/all.atom, /feeds/category/NAME.atom or /feeds/source/ID.atom (or .json)"
)


def route(path: str) -> tuple[Selection, FeedFormat] | None:
    """What ``path`` (under ``PREFIX``, percent-decoded) asks for; None when it is no feed."""
    stem, dot, extension = path.removeprefix(PREFIX).rpartition(".")
    form = _EXTENSIONS.get(extension)
    if not dot or form is None:
        return None
    if stem == "all":
        return Selection(), form
    kind, _, name = stem.partition("/")
    if kind == "category" and name:
        return Selection(category=name), form
    if kind == "source" and _SOURCE_ID.fullmatch(name):
        return Selection(source_id=int(name)), form
    return None


def feeds_app(store: Store, *, limit: int = DEFAULT_LIMIT) -> WsgiApp:
    """The WSGI app answering ``PREFIX`` paths from ``store``."""
    readers = threading.BoundedSemaphore(READERS)

    def read(selection: Selection) -> MergedFeed | _Refusal:
        if not readers.acquire(timeout=BUSY_WAIT_S):
            return _Refusal(_BUSY, "busy: too many feed requests at once; try again soon")
        try:
            return merged_feed(store, replace(selection, limit=limit))
        except FeedChoiceError as exc:
            return _Refusal(_NOT_FOUND, str(exc))
        except StoreError:  # its message names the store: not for whoever asks for a feed
            return _Refusal(_BUSY, "the store is not answering; try again soon")
        finally:
            readers.release()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return _Refusal("405 Method Not Allowed", "method not allowed: use GET").send(
                start_response, ("Allow", "GET, HEAD")
            )
        wanted = route(_path(environ))
        if wanted is None:
            return _Refusal(_NOT_FOUND, _USAGE).send(start_response)
        selection, form = wanted
        feed = read(selection)
        if isinstance(feed, _Refusal):
            return feed.send(start_response, ("Retry-After", "5") if feed.status == _BUSY else None)
        body = render_feed(feed, form, self_url=request_uri(environ, include_query=False))
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        headers = [("ETag", etag)]
        if feed.updated is not None:
            headers.append(("Last-Modified", email.utils.format_datetime(feed.updated, True)))
        if not_modified(environ, etag, feed.updated):
            start_response("304 Not Modified", headers)
            return []
        start_response(
            "200 OK",
            [("Content-Type", form.media_type), ("Content-Length", str(len(body))), *headers],
        )
        return [] if method == "HEAD" else [body]

    return app


@dataclass(frozen=True, slots=True)
class _Refusal:
    """An answer without a feed: a status and one line of text saying why."""

    status: str
    line: str

    def send(
        self, start_response: Callable[..., Any], header: tuple[str, str] | None = None
    ) -> list[bytes]:
        start_response(self.status, [_TEXT] if header is None else [_TEXT, header])
        return [self.line.encode("utf-8") + b"\n"]


def not_modified(environ: dict[str, Any], etag: str, updated: datetime | None) -> bool:
    """Whether the request's validators say the client holds this very document."""
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag in tags
    since = environ.get("HTTP_IF_MODIFIED_SINCE")
    if since is None or updated is None:
        return False
    try:
        moment = email.utils.parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False  # an unreadable date is ignored (RFC 9110 §13.1.3)
    if moment.tzinfo is None:
        return False
    return updated.replace(microsecond=0) <= moment


def _path(environ: dict[str, Any]) -> str:
    """The request's whole path as text (``SCRIPT_NAME`` holds the prefix the app is mounted
    at): WSGI hands it over percent-decoded as Latin-1 (PEP 3333)."""
    raw = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    try:
        return str(raw.encode("latin-1").decode("utf-8"))
    except UnicodeError:
        return ""
