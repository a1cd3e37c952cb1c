"""Fetching feeds over HTTP like a good citizen: the only module that imports httpx.

One ``httpx.AsyncClient`` per process, built by ``Fetcher`` (the factory), with explicit
timeouts (connect, read, and a total per fetch), a User-Agent naming the project, gzip and
brotli, at most ``concurrency`` connections overall and ``per_host`` requests in flight per host.

Response classification (DESIGN §5) happens here and nowhere else:

=====================  =======================================================================
200                    a document -- unless its ETag/Last-Modified equal the stored ones, in
                       which case it is "not modified" and the body is not even read
304                    not modified
301, 308               followed; the target is reported as ``permanent_redirect`` (the policy
                       moves the source after two checks in a row)
302, 303, 307          followed, nothing recorded; the source's credentials (``user:pass@``,
                       sent by httpx as ``Authorization: Basic``) follow a redirect only
                       within the source's origin, never to another
410                    ``FetchError(kind=ErrorKind.GONE)``: the source gets disabled
429, 503               ``FetchError(kind=ErrorKind.RETRY_LATER)`` with ``Retry-After`` when given
anything else          ``FetchError`` with a kind (``http_status``, ``timeout``, ``dns``,
                       ``refused``, ``tls``, ``blocked``, ``too_large``, ``redirects``,
                       ``bad_url``...)
=====================  =======================================================================

Bodies are streamed raw and decompressed here in bounded steps (httpx would inflate each network
read whole), counted as they grow, so an endless response or a gzip bomb is cut off at
``max_body`` with memory bounded. Every connection goes through a network backend
that resolves the host itself and refuses non-public addresses (``ingest.guard``) before
connecting to exactly the addresses it checked, on every redirect hop.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import re
import socket
import ssl
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit

import anyio
import brotli
import httpcore
import httpx
import sniffio

# anyio's socket stream and protocol for asyncio: what its connect_tcp builds, built here around
# a socket connected (and checked) by us.
from anyio._backends._asyncio import SocketStream, StreamProtocol

# httpcore's stream over an anyio socket stream; not exported, but the class httpcore itself
# returns for every connection under asyncio.
from httpcore._backends.anyio import AnyIOStream

from ingest.config import FetchSettings
from ingest.errors import ErrorKind, FetchError
from ingest.guard import AddressPolicy, refusal
from ingest.types import Failed, Fetched, FetchResult, Gone, NotModified, RetryLater

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT = frozenset({301, 308})
_MAX_AGE = re.compile(r"\bmax-age\s*=\s*(\d+)", re.IGNORECASE)
_STATUS_HINTS = {
    401: "the feed needs credentials",
    403: "the server refuses us",
    404: "check the URL; the feed may have moved",
}
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


class AddressRefused(httpcore.ConnectError):
    """Raised by the guarded backend; httpx wraps it in ConnectError, keeping it as the cause."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, applies the address policy, connects to a checked address.

    The socket is connected by the event loop and then wrapped the way anyio's ``connect_tcp``
    wraps its own (reading paused until asked), in the stream (TLS included) httpcore uses as
    usual: ``connect_tcp`` itself races the addresses it is given in a task group, even when
    there is only one, which cost a quarter of the event loop's time in a pass of 304s.
    """

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _resolve(host, port)
        reason = refusal(host, addresses, self._policy)
        if reason:
            raise AddressRefused(reason)
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await _connect(address, port, timeout, local_address, socket_options or ())
            except httpcore.ConnectError as exc:
                last_error = exc
        raise last_error or httpcore.ConnectError(f"no address for {host}")

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not fetched")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


async def _connect(
    address: str,
    port: int,
    timeout: float | None,
    local_address: str | None,
    socket_options: Iterable[Any],
) -> httpcore.AsyncNetworkStream:
    """A stream connected to ``address``; httpcore's ConnectError or ConnectTimeout if not."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        for option in socket_options:
            sock.setsockopt(*option)
        if local_address:
            sock.bind((local_address, 0))
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, (address, port))
        transport, protocol = await loop.create_connection(StreamProtocol, sock=sock)
    except TimeoutError as exc:
        sock.close()
        raise httpcore.ConnectTimeout(f"no connection to {address} within {timeout}s") from exc
    except OSError as exc:
        sock.close()
        raise httpcore.ConnectError(str(exc)) from exc
    except BaseException:
        sock.close()
        raise
    # What anyio's own connect_tcp does (SocketStream.from_socket does not): the transport then
    # reads only while a receive() waits for data. Left reading, it takes whatever the server
    # sends, as fast as it comes, into an unbounded queue: a server that floods its answer
    # before the first receive grew one 16 MiB-capped fetch to gigabytes.
    transport.pause_reading()
    return AnyIOStream(SocketStream(transport, protocol))


async def _resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` stands for: itself when it is one (no resolver round trip)."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _guarded_transport(settings: FetchSettings, limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport(limits=limits, retries=0)
    # httpx has no public way to give its pool a network backend yet (encode/httpx#3180,
    # PR #3749); the pool's own attribute is the seam everyone uses until then.
    pool: Any = transport._pool
    policy = AddressPolicy.from_settings(settings.allow_private_networks, settings.allow_hosts)
    pool._network_backend = GuardedBackend(policy)
    return transport


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
            max_keepalive_connections=min(settings.concurrency, 2 * settings.per_host),
        )
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(
                settings.timeout, connect=settings.connect_timeout, read=settings.read_timeout
            ),
            limits=limits,
            headers={"User-Agent": settings.user_agent},
            follow_redirects=False,  # followed by hand: each hop is classified and limited
            transport=transport or _guarded_transport(settings, limits),
        )
        self._per_host: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(settings.per_host)
        )

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
        asked = _Asked(url, etag, last_modified, max_body or self.settings.max_body)
        try:
            return await self._fetch(asked)
        except FetchError as exc:
            return Failed.of(exc)

    async def _fetch(self, asked: _Asked) -> FetchResult:
        """``fetch``, raising FetchError for a failure met on the way."""
        url = asked.url
        # anyio asks sniffio which event loop runs at every checkpoint; sniffio finds out with
        # asyncio.current_task(), pure Python before 3.12: a fifth of a 304 pass. Say it once.
        sniffio.current_async_library_cvar.set("asyncio")
        try:
            return await self._follow(asked)
        except TimeoutError as exc:
            raise FetchError(
                url,
                f"no complete answer within {self.settings.timeout:g}s: the server is too slow "
                "or the feed too large (see [fetch] timeout)",
                kind=ErrorKind.TIMEOUT,
            ) from exc
        except httpx.HTTPError as exc:
            raise _fetch_error(url, exc) from exc

    async def _follow(self, asked: _Asked) -> FetchResult:
        permanent: str | None = None
        still_permanent = True
        url = asked.url
        budget = self.settings.timeout
        loop = asyncio.get_running_loop()
        for _ in range(MAX_REDIRECTS + 1):
            async with self._per_host[urlsplit(url).hostname or ""]:
                started = loop.time()
                try:
                    async with (
                        asyncio.timeout(budget),
                        self._client.stream("GET", url, headers=asked.headers()) as response,
                    ):
                        if response.status_code not in _REDIRECTS:
                            return await _classify(response, asked, permanent)
                        target = _redirect_target(asked.url, url, response)
                        target = _credentials_for(target, asked.url)
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


@dataclass(frozen=True, slots=True)
class _Asked:
    """One fetch as asked: the source's URL, its stored validators, its size cap."""

    url: str
    etag: str | None
    last_modified: str | None
    max_body: int

    def headers(self) -> dict[str, str]:
        headers = {"Accept": ACCEPT, "Accept-Encoding": "gzip, deflate, br"}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers

    def unchanged(self, response: httpx.Response) -> bool:
        """304, or a 200 carrying the validators we sent (servers that ignore them)."""
        if response.status_code == 304:
            return True
        headers = response.headers
        return response.status_code == 200 and (
            (self.etag is not None and headers.get("etag") == self.etag)
            or (
                self.last_modified is not None
                and headers.get("last-modified") == self.last_modified
            )
        )


async def _classify(response: httpx.Response, asked: _Asked, permanent: str | None) -> FetchResult:
    status = response.status_code
    final = str(response.url)
    max_age = _max_age(response.headers)
    if asked.unchanged(response):
        return NotModified(url=final, permanent_redirect=permanent, max_age_s=max_age)
    if status == 200:
        return Fetched(
            url=final,
            document=await _read_capped(response, asked.url, asked.max_body),
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            charset=response.charset_encoding,
            permanent_redirect=permanent,
            max_age_s=max_age,
        )
    reason = f"HTTP {status} {response.reason_phrase}".rstrip()
    if status == 410:
        return Gone(f"{reason}: the server says this feed is gone for good")
    if status in (429, 503):
        retry_after = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
        when = f"; asked to retry after {retry_after:%Y-%m-%d %H:%M:%S} UTC" if retry_after else ""
        return RetryLater(reason + when, retry_after)
    hint = _STATUS_HINTS.get(status)
    return Failed(ErrorKind.HTTP_STATUS, f"{reason}: {hint}" if hint else reason)


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


def _max_age(headers: httpx.Headers) -> int | None:
    """Seconds a response may be cached, from Cache-Control max-age, else Expires - Date."""
    match = _MAX_AGE.search(headers.get("cache-control", ""))
    if match:
        return int(match.group(1)) or None
    try:
        expires = email.utils.parsedate_to_datetime(headers.get("expires", ""))
        date = email.utils.parsedate_to_datetime(headers.get("date", ""))
    except (TypeError, ValueError):
        return None
    seconds = int((expires - date).total_seconds())
    return seconds if seconds > 0 else None


def _redirect_target(first: str, url: str, response: httpx.Response) -> str:
    location = response.headers.get("location")
    if not location:
        raise FetchError(
            first, f"HTTP {response.status_code} without a Location", kind=ErrorKind.REDIRECTS
        )
    target: str = urljoin(url, str(location).strip())
    if urlsplit(target).scheme not in ("http", "https"):
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


class _Inflater:
    """Decompresses a body in steps of at most ``STEP`` bytes of output.

    httpx decompresses each network read in one go, so 64 KiB of a gzip bomb become 64 MiB
    before anyone can count them; here no step produces more than ``STEP`` bytes, and the
    caller stops at the size cap.
    """

    STEP = 64 * 1024

    def __init__(self, encoding: str, url: str) -> None:
        self.encoding = encoding
        self.url = url
        self._zlib: Any = None
        self._brotli: Any = None
        self._first = True
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header
        elif encoding == "br":
            self._brotli = brotli.Decompressor()
        elif encoding not in ("", "identity"):
            raise FetchError(
                url, f"unsupported Content-Encoding {encoding!r}", kind=ErrorKind.DECODING
            )

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            if self._zlib is not None:
                yield from self._inflate(data)
            elif self._brotli is not None:
                yield self._brotli.process(data, output_buffer_limit=self.STEP)
                while not self._brotli.can_accept_more_data():
                    yield self._brotli.process(b"", output_buffer_limit=self.STEP)
            else:
                yield data
        except (zlib.error, brotli.error) as exc:
            raise FetchError(
                self.url, f"the {self.encoding} body is corrupt: {exc}", kind=ErrorKind.DECODING
            ) from exc

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        if self._first and self.encoding == "deflate" and data[:1] != b"x":
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, no zlib header
        self._first = self._first and not data
        while data:
            if self._zlib.eof:  # another gzip member follows the one that ended
                self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 32)
            yield self._zlib.decompress(data, self.STEP)
            data = self._zlib.unconsumed_tail or (self._zlib.unused_data if self._zlib.eof else b"")


async def _read_capped(response: httpx.Response, url: str, max_body: int) -> bytes:
    """The decompressed body, or FetchError as soon as it grows past ``max_body`` bytes."""
    inflater = _Inflater(response.headers.get("content-encoding", "").strip().lower(), url)
    chunks: list[bytes] = []
    size = 0
    async for raw in response.aiter_raw():
        for chunk in inflater.feed(raw):
            size += len(chunk)
            if size > max_body:
                raise FetchError(
                    url,
                    f"response is larger than {max_body} bytes (after decompression); "
                    "raise max_body for this source if the feed really is that big",
                    kind=ErrorKind.TOO_LARGE,
                )
            chunks.append(chunk)
    return b"".join(chunks)


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


def _fetch_error(url: str, exc: httpx.HTTPError) -> FetchError:
    """Our error, with a kind and a sentence, for one of httpx's."""
    for test, kind, template in _ERROR_RULES:
        if test(exc):
            return FetchError(url, template.format(exc=exc, name=type(exc).__name__), kind=kind)
    return FetchError(url, f"request failed: {exc or type(exc).__name__}", kind=ErrorKind.NETWORK)
