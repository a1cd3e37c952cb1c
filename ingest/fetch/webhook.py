"""POSTing to webhooks (``[[hooks]]`` with ``webhook = URL``), through the same SSRF guard and
``[fetch] allow_private_networks`` / ``allow_hosts`` as every fetch (``guarded_transport``).

A webhook URL is written by whoever writes the config, like a feed URL, and a redirect chosen by
its server could point anywhere; so redirects are not followed (a 3xx is a failure naming its
status), and the answer's body is never read: a 2xx status is all a delivery needs.

``Webhooks.post`` returns None when the hook took the body, else the reason it did not, as a
sentence without the URL (webhook URLs often carry their token in the path); it raises
nothing for what the network or the server does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import TracebackType

import httpx

from ingest.config import FetchSettings
from ingest.errors import FetchError
from ingest.fetch.client import fetch_error
from ingest.fetch.network import guarded_transport


class Webhooks:
    """The one HTTP client of the delivery worker; an async context manager."""

    def __init__(self, settings: FetchSettings, *, connections: int) -> None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._client = httpx.AsyncClient(
            limits=limits,
            headers={"User-Agent": settings.user_agent},
            follow_redirects=False,
            transport=guarded_transport(settings, limits),
        )

    async def __aenter__(self) -> Webhooks:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._client.aclose()

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], *, timeout: float
    ) -> str | None:
        """POST ``body`` to ``url`` within ``timeout`` seconds; None when answered 2xx, else
        why not."""
        try:
            async with (
                asyncio.timeout(timeout),
                self._client.stream(
                    "POST", url, content=body, headers=dict(headers), timeout=timeout
                ) as response,
            ):
                status = response.status_code
        except TimeoutError:
            return f"no answer within {timeout:g}s (the hook's timeout)"
        except httpx.InvalidURL as exc:
            return f"not a valid URL ({exc})"
        except httpx.HTTPError as exc:
            error: FetchError = fetch_error(url, exc)
            return error.reason
        if 200 <= status < 300:
            return None
        if 300 <= status < 400:
            return f"HTTP {status}: redirects are not followed; give the URL it redirects to"
        return f"HTTP {status}"
