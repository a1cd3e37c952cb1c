"""The SSRF-guarded network backend: every connection of the fetcher, checked (DESIGN §3).

``guarded_transport`` is the one thing to use from here. Its backend resolves the host itself,
refuses non-public addresses (``ingest.fetch.guard``) and connects to exactly the addresses it
checked, on every redirect hop, so a DNS answer cannot change between the check and the
connection (rebinding).

This module holds every reach into httpx's, httpcore's and anyio's internals (the pool's network
backend attribute, anyio's asyncio socket stream, httpcore's anyio stream): the fetch tests fail
if one of them moves.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import anyio
import httpcore
import httpx

# anyio's socket stream and protocol for asyncio: what its connect_tcp builds, built here around
# a socket connected (and checked) by us.
from anyio._backends._asyncio import SocketStream, StreamProtocol

# httpcore's stream over an anyio socket stream; not exported, but the class httpcore itself
# returns for every connection under asyncio.
from httpcore._backends.anyio import AnyIOStream
from httpcore._utils import is_socket_readable

from ingest.config import FetchSettings
from ingest.fetch.guard import AddressPolicy, refusal


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
    return _Stream(SocketStream(transport, protocol), sock)


class _Stream(AnyIOStream):
    """httpcore's stream over anyio, telling whether its socket is readable from the socket it
    keeps. httpcore asks that of every pooled connection each time it places a request (a
    connection the server closed reads as readable), and anyio builds its whole table of
    socket attributes to answer: a tenth of the CPU of a pass of 304s."""

    def __init__(self, stream: anyio.abc.ByteStream, sock: socket.socket) -> None:
        super().__init__(stream)
        self._socket = sock

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return is_socket_readable(self._socket)
        return super().get_extra_info(info)

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        secured = await super().start_tls(ssl_context, server_hostname, timeout)
        assert isinstance(secured, AnyIOStream)
        return _Stream(secured._stream, self._socket)


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


def guarded_transport(settings: FetchSettings, limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose every connection goes through ``GuardedBackend`` with the
    address policy of ``settings``; no retries (a failed fetch is retried by the schedule)."""
    transport = httpx.AsyncHTTPTransport(limits=limits, retries=0)
    # httpx has no public way to give its pool a network backend yet (encode/httpx#3180,
    # PR #3749); the pool's own attribute is the seam everyone uses until then.
    pool: Any = transport._pool
    policy = AddressPolicy.from_settings(settings.allow_private_networks, settings.allow_hosts)
    pool._network_backend = GuardedBackend(policy)
    return transport
