"""Response classification (DESIGN §5): what a server's answer means, as a pure function.

``classify`` takes what was asked (the stored validators), the status, the headers and ``now``,
and returns the outcome; nothing here does I/O or needs a response object, so
``tests/test_classify.py`` pins every rule as a table of named cases.

=====================  =======================================================================
200                    a new document (``NewDocument``: read its body, then it is ``Fetched``)
                       -- unless its ETag/Last-Modified equal the stored ones, in which case
                       it is ``NotModified`` and the body is not even read
304                    ``NotModified``
410                    ``Gone``: the source gets disabled
429, 503               ``RetryLater``, until the moment ``Retry-After`` names (seconds or an
                       HTTP date) as the server said it; the schedule bounds it
anything else          ``Failed`` of kind ``http_status``, with a hint for 401, 403 and 404
=====================  =======================================================================

Redirects never get here: the client follows them (``ingest.fetch.client``) and passes the
permanent target on. ``max_age_s`` comes from ``Cache-Control: max-age``, else Expires - Date.
The status is shown with its standard reason phrase, never the server's own words.
"""

from __future__ import annotations

import email.message
import email.utils
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

from ingest.errors import ErrorKind
from ingest.types import Failed, Fetched, FetchResult, Gone, NotModified, RetryLater

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
_MAX_AGE = re.compile(r"\bmax-age\s*=\s*(\d+)", re.IGNORECASE)
_STATUS_HINTS = {
    401: "the feed needs credentials",
    403: "the server refuses us",
    404: "check the URL; the feed may have moved",
}


@dataclass(frozen=True, slots=True)
class Asked:
    """One fetch as asked: the source's URL, its stored validators, its size cap."""

    url: str
    etag: str | None
    last_modified: str | None
    max_body: int

    def headers(self) -> dict[str, str]:
        """The request headers: what we accept, and the stored validators (conditional GET)."""
        headers = {"Accept": ACCEPT, "Accept-Encoding": "gzip, deflate, br"}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass(frozen=True, slots=True)
class NewDocument:
    """A 200 with a new document: everything of the ``Fetched`` result but the body, which
    the client reads (capped) only once the answer is known to be worth it."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    charset: str | None = None
    permanent_redirect: str | None = None
    max_age_s: int | None = None

    def fetched(self, document: bytes) -> Fetched:
        return Fetched(
            url=self.url,
            document=document,
            etag=self.etag,
            last_modified=self.last_modified,
            charset=self.charset,
            permanent_redirect=self.permanent_redirect,
            max_age_s=self.max_age_s,
        )


def classify(
    status: int,
    headers: Mapping[str, str],
    asked: Asked,
    *,
    url: str,
    permanent: str | None,
    now: datetime,
) -> FetchResult | NewDocument:
    """What the answer ``status`` with ``headers`` to ``asked`` means (see the module's table).

    ``url`` is where the answer came from (after redirects), ``permanent`` where a chain of
    301/308 led, if it did; header names are matched whatever their case.
    """
    fields = {name.lower(): value for name, value in headers.items()}
    max_age = _max_age(fields)
    if status == 304 or (status == 200 and _carries_stored_validators(fields, asked)):
        return NotModified(url=url, permanent_redirect=permanent, max_age_s=max_age)
    if status == 200:
        return NewDocument(
            url=url,
            etag=fields.get("etag"),
            last_modified=fields.get("last-modified"),
            charset=charset_of(fields.get("content-type")),
            permanent_redirect=permanent,
            max_age_s=max_age,
        )
    reason = f"HTTP {status} {_phrase(status)}".rstrip()
    if status == 410:
        return Gone(f"{reason}: the server says this feed is gone for good")
    if status in (429, 503):
        until = parse_retry_after(fields.get("retry-after"), now)
        when = f"; asked to retry after {until:%Y-%m-%d %H:%M:%S} UTC" if until else ""
        return RetryLater(reason + when, until)
    hint = _STATUS_HINTS.get(status)
    return Failed(ErrorKind.HTTP_STATUS, f"{reason}: {hint}" if hint else reason)


def _carries_stored_validators(fields: Mapping[str, str], asked: Asked) -> bool:
    """A 200 carrying the validators we sent: a server that ignores conditional requests.

    The entity tag decides when there is one on both sides, as it does for a conditional
    request (RFC 9110 13.2.2): a new ETag is a new document even when ``Last-Modified`` stayed
    (servers that keep it fixed would otherwise have every change dropped). Without one, the
    same ``Last-Modified`` means what a 304 to ``If-Modified-Since`` would have meant.
    """
    etag = fields.get("etag")
    if etag is not None and asked.etag is not None:
        return etag == asked.etag
    return asked.last_modified is not None and fields.get("last-modified") == asked.last_modified


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def charset_of(content_type: str | None) -> str | None:
    """The charset a Content-Type names, lower-cased, as httpx reads it."""
    if not content_type:
        return None
    message = email.message.Message()
    message["content-type"] = content_type
    return message.get_content_charset(failobj=None)


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    """The moment a ``Retry-After`` header (delay seconds or HTTP date) points at, or None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return now + timedelta(seconds=int(text))
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)


def _max_age(fields: Mapping[str, str]) -> int | None:
    """Seconds a response may be cached, from Cache-Control max-age, else Expires - Date."""
    match = _MAX_AGE.search(fields.get("cache-control", ""))
    if match:
        return int(match.group(1)) or None
    try:
        expires = email.utils.parsedate_to_datetime(fields.get("expires", ""))
        date = email.utils.parsedate_to_datetime(fields.get("date", ""))
    except (TypeError, ValueError):
        return None
    seconds = int((expires - date).total_seconds())
    return seconds if seconds > 0 else None
