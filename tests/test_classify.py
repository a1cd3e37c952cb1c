"""Response classification as a table of named cases: status and headers in, outcome out.

No server and no clock: ``classify`` is a pure function of what was asked, the status, the
headers and ``now`` (in the manner of miniflux's ``response_handler_test.go``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from ingest.errors import ErrorKind
from ingest.fetch.classify import Asked, NewDocument, classify
from ingest.types import Failed, FetchResult, Gone, NotModified, RetryLater
from tests.builders import NOW

URL = "https://x.example/feed"
MOVED = "https://y.example/feed"
STORED_ETAG = '"v1"'
STORED_DATE = "Mon, 01 Jan 2024 00:00:00 GMT"


@dataclass(frozen=True)
class Case:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    expected: FetchResult | NewDocument | None = None
    etag: str | None = STORED_ETAG
    last_modified: str | None = STORED_DATE
    permanent: str | None = None


def new(**fields: object) -> NewDocument:
    return NewDocument(**{"url": URL, **fields})  # type: ignore[arg-type]


CASES = {
    "200 new document": Case(
        200,
        {"ETag": '"v2"', "Last-Modified": "Tue, 02 Jan 2024 00:00:00 GMT"},
        new(etag='"v2"', last_modified="Tue, 02 Jan 2024 00:00:00 GMT"),
    ),
    "200 with the charset of its Content-Type": Case(
        200,
        {"Content-Type": 'application/rss+xml; charset="GB2312"'},
        new(charset="gb2312"),
    ),
    "200 carrying the stored ETag is not modified": Case(
        200, {"ETag": STORED_ETAG}, NotModified(URL)
    ),
    "200 carrying the stored Last-Modified is not modified": Case(
        200, {"Last-Modified": STORED_DATE}, NotModified(URL)
    ),
    "200 with a new ETag and the stored Last-Modified is new": Case(
        200,
        {"ETag": '"v2"', "Last-Modified": STORED_DATE},
        new(etag='"v2"', last_modified=STORED_DATE),
    ),
    "200 with the stored ETag and a later Last-Modified is not modified": Case(
        200,
        {"ETag": STORED_ETAG, "Last-Modified": "Tue, 02 Jan 2024 00:00:00 GMT"},
        NotModified(URL),
    ),
    "200 when nothing was stored": Case(
        200, {"ETag": STORED_ETAG}, new(etag=STORED_ETAG), etag=None, last_modified=None
    ),
    "200 after a permanent redirect": Case(200, {}, new(permanent_redirect=MOVED), permanent=MOVED),
    "304": Case(304, {}, NotModified(URL)),
    "304 after a permanent redirect": Case(
        304, {}, NotModified(URL, permanent_redirect=MOVED), permanent=MOVED
    ),
    "304 with max-age": Case(
        304, {"Cache-Control": "public, max-age=3600"}, NotModified(URL, max_age_s=3600)
    ),
    "200 with max-age": Case(200, {"Cache-Control": "max-age=7200"}, new(max_age_s=7200)),
    "max-age=0 says nothing": Case(200, {"Cache-Control": "no-cache, max-age=0"}, new()),
    "Expires minus Date": Case(
        200,
        {"Date": "Sat, 01 Jun 2024 12:00:00 GMT", "Expires": "Sat, 01 Jun 2024 13:00:00 GMT"},
        new(max_age_s=3600),
    ),
    "Expires in the past says nothing": Case(
        200,
        {"Date": "Sat, 01 Jun 2024 12:00:00 GMT", "Expires": "Thu, 01 Jan 1970 00:00:00 GMT"},
        new(),
    ),
    "max-age wins over Expires": Case(
        200,
        {
            "Cache-Control": "max-age=60",
            "Date": "Sat, 01 Jun 2024 12:00:00 GMT",
            "Expires": "Sat, 01 Jun 2024 13:00:00 GMT",
        },
        new(max_age_s=60),
    ),
    "410 gone": Case(410, {}, Gone("HTTP 410 Gone: the server says this feed is gone for good")),
    "429 with Retry-After seconds": Case(
        429,
        {"Retry-After": "120"},
        RetryLater(
            "HTTP 429 Too Many Requests; asked to retry after 2024-06-01 12:02:00 UTC",
            NOW + timedelta(seconds=120),
        ),
    ),
    "503 with Retry-After as an HTTP date": Case(
        503,
        {"Retry-After": "Sat, 01 Jun 2024 15:00:00 GMT"},
        RetryLater(
            "HTTP 503 Service Unavailable; asked to retry after 2024-06-01 15:00:00 UTC",
            NOW + timedelta(hours=3),
        ),
    ),
    "503 without Retry-After": Case(503, {}, RetryLater("HTTP 503 Service Unavailable")),
    "429 with a Retry-After that is neither": Case(
        429, {"Retry-After": "soon"}, RetryLater("HTTP 429 Too Many Requests")
    ),
    # The server's word is reported as given; the schedule bounds it ([schedule]
    # max_retry_after, 7 days by default: tests/test_policy.py "retry-after capped").
    "Retry-After of a year is reported as said": Case(
        429,
        {"Retry-After": str(365 * 86400)},
        RetryLater(
            "HTTP 429 Too Many Requests; asked to retry after 2025-06-01 12:00:00 UTC",
            NOW + timedelta(days=365),
        ),
    ),
    "404 with a hint": Case(
        404,
        {},
        Failed(ErrorKind.HTTP_STATUS, "HTTP 404 Not Found: check the URL; the feed may have moved"),
    ),
    "401 needs credentials": Case(
        401, {}, Failed(ErrorKind.HTTP_STATUS, "HTTP 401 Unauthorized: the feed needs credentials")
    ),
    "403 refused": Case(
        403, {}, Failed(ErrorKind.HTTP_STATUS, "HTTP 403 Forbidden: the server refuses us")
    ),
    "500": Case(500, {}, Failed(ErrorKind.HTTP_STATUS, "HTTP 500 Internal Server Error")),
    "an unknown status": Case(599, {}, Failed(ErrorKind.HTTP_STATUS, "HTTP 599")),
    "a 304 we did not ask for is still not modified": Case(
        304, {}, NotModified(URL), etag=None, last_modified=None
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_classify(case: Case) -> None:
    asked = Asked(URL, case.etag, case.last_modified, max_body=1024)
    outcome = classify(case.status, case.headers, asked, url=URL, permanent=case.permanent, now=NOW)
    assert outcome == case.expected


def test_header_names_are_matched_whatever_their_case() -> None:
    asked = Asked(URL, STORED_ETAG, None, max_body=1024)
    outcome = classify(200, {"etag": STORED_ETAG}, asked, url=URL, permanent=None, now=NOW)
    assert outcome == NotModified(URL)


def test_a_new_document_becomes_fetched_with_its_body() -> None:
    document = new(etag='"v2"', max_age_s=60).fetched(b"<rss/>")
    assert (document.document, document.etag, document.max_age_s) == (b"<rss/>", '"v2"', 60)
