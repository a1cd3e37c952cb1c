"""Fetching feeds over HTTP: the only module that imports httpx.

One ``httpx.AsyncClient`` per process, built here, with explicit timeouts. The body is streamed
and counted after decompression, so an endless or oversized response is cut off at ``max_body``
with memory bounded. httpx's exceptions are turned into ``FetchError`` with a reason a user can
act on; nothing else leaves this module.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

import httpx

from ingest.config import FetchSettings
from ingest.errors import FetchError
from ingest.types import FetchResult


class Fetcher:
    """Fetches feed documents; use as an async context manager (it owns the client)."""

    def __init__(
        self, settings: FetchSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(
                settings.timeout,
                connect=settings.connect_timeout,
                read=settings.read_timeout,
            ),
            limits=httpx.Limits(
                max_connections=settings.concurrency,
                max_keepalive_connections=settings.concurrency,
            ),
            headers={"User-Agent": settings.user_agent},
            follow_redirects=True,
            transport=transport,
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

    async def fetch(self, url: str, *, max_body: int | None = None) -> FetchResult:
        """The document at ``url``; raises FetchError (timeouts are bounded by ``timeout``)."""
        try:
            async with asyncio.timeout(self.settings.timeout):
                return await self._get(url, max_body or self.settings.max_body)
        except TimeoutError as exc:
            raise FetchError(
                url,
                f"no complete answer within {self.settings.timeout:g}s; the server is too slow "
                "or the feed too large (see [fetch] timeout)",
                kind="timeout",
            ) from exc
        except httpx.TimeoutException as exc:
            raise FetchError(url, f"timed out ({type(exc).__name__})", kind="timeout") from exc
        except httpx.HTTPError as exc:
            raise FetchError(url, f"request failed: {exc}", kind="network") from exc

    async def _get(self, url: str, max_body: int) -> FetchResult:
        async with self._client.stream("GET", url) as response:
            if response.status_code != 200:
                raise FetchError(
                    url,
                    f"HTTP {response.status_code} {response.reason_phrase}".rstrip(),
                    kind="http_status",
                )
            body = await _read_capped(response, url, max_body)
            return FetchResult(
                url=str(response.url),
                document=body,
                charset=response.charset_encoding,
            )


async def _read_capped(response: httpx.Response, url: str, max_body: int) -> bytes:
    """The decompressed body, or FetchError as soon as it grows past ``max_body`` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_body:
            raise FetchError(
                url,
                f"response is larger than {max_body} bytes (after decompression); "
                "raise max_body for this source if the feed really is that big",
                kind="too_large",
            )
        chunks.append(chunk)
    return b"".join(chunks)
