"""The fetcher: one httpx client per process and the redirect loop (DESIGN §5).

One ``httpx.AsyncClient`` per process, built by ``Fetcher``, with explicit timeouts (connect,
read, and a total per fetch), a User-Agent naming the project, gzip and brotli, at most
``concurrency`` connections overall and ``per_host`` requests in flight per host. A
``[[fetch.hosts]]`` rule gives the hosts it matches their own ``per_host`` and ``timeout``: an
operator opens up their own RSSHub while staying polite with everyone else.

Redirects are followed here, by hand, at most ``MAX_REDIRECTS``: 301 and 308 are reported as
``permanent_redirect`` while every hop of the chain is permanent (the policy moves the source
after two checks in a row); 302, 303 and 307 are followed with nothing recorded. The source's
credentials (``user:pass@``, sent by httpx as ``Authorization: Basic``) follow a redirect only
within the source's origin, never to another.

Every other answer is classified by ``ingest.fetch.classify``; a new document's body is read by
``ingest.fetch.body``; connections go through ``ingest.fetch.network``. httpx's exceptions are
turned into a ``Failed`` with a kind here (``timeout``, ``dns``, ``refused``, ``tls``,
``blocked``, ``too_large``, ``redirects``, ``bad_url``...): ``Fetcher.fetch`` returns every
outcome and raises none.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import httpx
import sniffio

from ingest.config import FetchSettings
from ingest.errors import ErrorKind, FetchError
from ingest.fetch.body import read_capped
from ingest.fetch.classify import Asked, NewDocument, classify
from ingest.fetch.network import AddressRefused, guarded_transport
from ingest.types import Failed, FetchResult
from ingest.urls import is_http_url, redacted

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT = frozenset({301, 308})
_BODILESS = frozenset({204, 304})
"""Answers that never carry a body (RFC 9110 6.4.1)."""
_DRAIN_LIMIT = 64 * 1024
"""The longest unused body read to keep its connection (``_release``)."""


class Fetcher:
    """Fetches feed documents; an async context manager owning the process's one client."""

    def __init__(
        self, settings: FetchSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        limits = httpx.Limits(
            max_connections=settings.concurrency,
            # A few idle connections: enough to reuse one for the next feed of the same host,
            # few enough that httpcore's scan of idle connections before each request (a
            # socket poll each) stays cheap. Feeds are polled minutes apart; servers close
            # idle connections after seconds.
            max_keepalive_connections=min(settings.concurrency, 2 * _widest(settings)),
        )
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(
                settings.timeout, connect=settings.connect_timeout, read=settings.read_timeout
            ),
            limits=limits,
            headers={"User-Agent": settings.user_agent},
            follow_redirects=False,  # followed by hand: each hop is classified and limited
            transport=transport or guarded_transport(settings, limits),
        )
        self._per_host: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._client.aclose()

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        max_body: int | None = None,
    ) -> FetchResult:
        """What asking for ``url`` with the stored validators came to: the document, "not
        modified", gone, retry later, or a failure with its kind. Never raises for anything the
        server or the network does.

        The fetch, redirects included, takes at most ``timeout`` once it has a slot for its host
        (waiting for the slot does not count).
        """
        asked = Asked(url, etag, last_modified, max_body or self.settings.max_body)
        try:
            return await self._fetch(asked)
        except FetchError as exc:
            return Failed.of(exc)

    async def _fetch(self, asked: Asked) -> FetchResult:
        """``fetch``, raising FetchError for a failure met on the way."""
        url = asked.url
        # anyio asks sniffio which event loop runs at every checkpoint; sniffio finds out with
        # asyncio.current_task(), pure Python before 3.12: a fifth of a 304 pass. Say it once.
        sniffio.current_async_library_cvar.set("asyncio")
        host = urlsplit(url).hostname or ""
        budget = self.settings.timeout_for(host)
        try:
            return await self._follow(asked, budget)
        except TimeoutError as exc:
            setting = "its [[fetch.hosts]] rule" if self.settings.rule_for(host) else "[fetch]"
            raise FetchError(
                url,
                f"no complete answer within {budget:g}s: the server is too slow "
                f"or the feed too large (see timeout in {setting})",
                kind=ErrorKind.TIMEOUT,
            ) from exc
        except httpx.HTTPError as exc:
            raise fetch_error(url, exc) from exc

    async def post_form(self, url: str, form: Mapping[str, str]) -> int | Failed:
        """POST ``form``, URL-encoded, to ``url`` (a WebSub hub): the answer's status, or a
        ``Failed`` with its kind. The same address guard, per-host slots and time budget as a
        fetch; redirects are not followed (a hub answers where it is). Never raises for
        anything the server or the network does."""
        host = urlsplit(url).hostname or ""
        try:
            async with self._slots(host), asyncio.timeout(self.settings.timeout_for(host)):
                response = await self._client.post(url, data=dict(form))
        except TimeoutError:
            return Failed(ErrorKind.TIMEOUT, f"{redacted(url)}: no answer in time")
        except httpx.InvalidURL as exc:
            return Failed(ErrorKind.BAD_URL, f"{redacted(url)}: not a valid URL ({exc})")
        except httpx.HTTPError as exc:
            return Failed.of(fetch_error(url, exc))
        return response.status_code

    def _slots(self, host: str) -> asyncio.Semaphore:
        """The requests in flight to ``host``: ``per_host`` of them, or its rule's."""
        slots = self._per_host.get(host)
        if slots is None:
            slots = self._per_host[host] = asyncio.Semaphore(self.settings.per_host_for(host))
        return slots

    async def _follow(self, asked: Asked, budget: float) -> FetchResult:
        """The fetch of ``asked``, redirects followed, within ``budget`` seconds in all."""
        permanent: str | None = None
        still_permanent = True
        url = asked.url
        loop = asyncio.get_running_loop()
        for _ in range(MAX_REDIRECTS + 1):
            async with self._slots(urlsplit(url).hostname or ""):
                started = loop.time()
                try:
                    async with (
                        asyncio.timeout(budget),
                        self._client.stream("GET", url, headers=asked.headers()) as response,
                    ):
                        if response.status_code not in _REDIRECTS:
                            return await _outcome(response, asked, permanent)
                        target = _redirect_target(asked.url, url, response)
                        target = _credentials_for(target, asked.url)
                        await _release(response)
                except httpx.InvalidURL as exc:
                    raise _invalid_url(asked.url, url, exc) from exc
                budget -= loop.time() - started
            still_permanent = still_permanent and response.status_code in _PERMANENT
            permanent = target if still_permanent else permanent
            url = target
        raise FetchError(
            asked.url,
            f"more than {MAX_REDIRECTS} redirects in a row (a redirect loop?)",
            kind=ErrorKind.REDIRECTS,
        )


def _widest(settings: FetchSettings) -> int:
    """The most requests in flight any one host may have."""
    return max([settings.per_host, *(rule.per_host or 0 for rule in settings.hosts)])


async def _outcome(response: httpx.Response, asked: Asked, permanent: str | None) -> FetchResult:
    """What ``response`` (not a redirect) comes to, its body read only for a new document."""
    outcome = classify(
        response.status_code,
        response.headers,
        asked,
        url=str(response.url),
        permanent=permanent,
        now=datetime.now(UTC),
    )
    if isinstance(outcome, NewDocument):
        encoding = response.headers.get("content-encoding", "")
        document = await read_capped(response.aiter_raw(), encoding, asked.url, asked.max_body)
        links = response.links  # the Link header, parsed by httpx (RFC 8288)
        return replace(
            outcome.fetched(document),
            hub=_linked(links, "hub", outcome.url),
            self_url=_linked(links, "self", outcome.url),
        )
    await _release(response)
    return outcome


async def _release(response: httpx.Response) -> None:
    """Read to its end a body we do not use, when it is short, so that the connection goes
    back to the pool: one closed with its answer unread is dropped, and a pass of 304s would
    open (over HTTPS, handshake) a connection per feed. A long or unsized body is not worth
    reading: the connection is dropped then. Raw bytes only: nothing is decompressed."""
    size = response.headers.get("content-length", "")
    if response.status_code in _BODILESS or (size.isdigit() and int(size) <= _DRAIN_LIMIT):
        async for _ in response.aiter_raw():
            pass


def _linked(links: Mapping[str | None, Mapping[str, str]], rel: str, base: str) -> str | None:
    """The absolute http(s) URL the ``Link`` header gives for ``rel``, if any (WebSub §4: a
    hub and the topic's own URL are advertised this way first)."""
    href = links.get(rel, {}).get("url", "").strip()
    target: str = urljoin(base, href) if href else ""
    return target if is_http_url(target) else None


def _redirect_target(first: str, url: str, response: httpx.Response) -> str:
    location = response.headers.get("location")
    if not location:
        raise FetchError(
            first, f"HTTP {response.status_code} without a Location", kind=ErrorKind.REDIRECTS
        )
    target: str = urljoin(url, str(location).strip())
    if not is_http_url(target):
        raise FetchError(
            first,
            f"redirected to {target}: only http and https are fetched",
            kind=ErrorKind.BLOCKED,
        )
    return target


def _credentials_for(target: str, source: str) -> str:
    """``target`` carrying the credentials of ``source`` when it is on the same origin (scheme,
    host and port), and none otherwise, whatever its ``Location`` said.

    httpx sends a URL's credentials as an ``Authorization: Basic`` header, so the URL decides
    where they go: like browsers and httpx's own redirects, they stay within their origin, and
    a permanent move within it keeps them in the stored URL. Raises httpx.InvalidURL.
    """
    to, start = httpx.URL(target), httpx.URL(source)
    same_origin = (to.scheme, to.host, to.port) == (start.scheme, start.host, start.port)
    userinfo = start.userinfo if same_origin else b""
    return target if to.userinfo == userinfo else str(to.copy_with(userinfo=userinfo))


def _invalid_url(first: str, url: str, exc: httpx.InvalidURL) -> FetchError:
    """Bad input, not a bug: httpx raises InvalidURL, outside its HTTPError tree, for ``url``
    itself (a legacy address spelling such as ``0177.0.0.1``) and for the Location of any
    redirect, which it parses even when not following it (``data:``, backslashes...)."""
    try:
        httpx.URL(url)
    except httpx.InvalidURL:
        return FetchError(first, f"not a valid URL ({exc})", kind=ErrorKind.BAD_URL)
    return FetchError(
        first,
        f"redirected to a Location that cannot be fetched ({exc}); only http(s) URLs are followed",
        kind=ErrorKind.REDIRECTS,
    )


def _causes(exc: BaseException) -> Iterable[BaseException]:
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def _caused_by(kind: type[BaseException]) -> Callable[[httpx.HTTPError], bool]:
    return lambda exc: any(isinstance(cause, kind) for cause in _causes(exc))


_ERROR_RULES: tuple[tuple[Callable[[httpx.HTTPError], bool], ErrorKind, str], ...] = (
    (_caused_by(AddressRefused), ErrorKind.BLOCKED, "{exc}"),
    (_caused_by(httpx.TimeoutException), ErrorKind.TIMEOUT, "timed out ({name})"),
    (_caused_by(socket.gaierror), ErrorKind.DNS, "{exc}: check the host name"),
    (_caused_by(ssl.SSLError), ErrorKind.TLS, "TLS failed: {exc}"),
    (
        _caused_by(ConnectionRefusedError),
        ErrorKind.REFUSED,
        "connection refused: nothing listens there",
    ),
    (
        _caused_by(httpx.DecodingError),
        ErrorKind.DECODING,
        "the response could not be decompressed: {exc}",
    ),
    (_caused_by(httpx.RemoteProtocolError), ErrorKind.PROTOCOL, "the server broke HTTP: {exc}"),
)
"""First match wins: (test, kind, message template)."""


def fetch_error(url: str, exc: httpx.HTTPError) -> FetchError:
    """Our error, with a kind and a sentence, for one of httpx's."""
    for test, kind, template in _ERROR_RULES:
        if test(exc):
            return FetchError(url, template.format(exc=exc, name=type(exc).__name__), kind=kind)
    return FetchError(url, f"request failed: {exc or type(exc).__name__}", kind=ErrorKind.NETWORK)
