"""A real HTTP server on a loopback address, run in a thread, answering from a route table.

Tests describe what each path answers (status, headers, body, delays, endless bodies, hangs) and
read back what the server saw (requests with their headers, the most requests in flight at once).
``FloodServer`` is the hostile kind that sends without being asked.
"""

from __future__ import annotations

import base64
import socket
import socketserver
import ssl
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self


@dataclass
class Reply:
    status: int = 200
    body: bytes | Callable[[], Iterator[bytes]] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hang: bool = False


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes = b""
    """What a POST sent (webhooks)."""


Route = Reply | Callable[[Seen], Reply]


class _QuietServer(ThreadingHTTPServer):
    """Says nothing when a client goes away mid-request (a killed ``ingest`` does)."""

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class _QuietServer6(_QuietServer):
    address_family = socket.AF_INET6


class Loopback:
    """A threading ``socketserver`` on ``host`` at a free port, serving while entered."""

    def __init__(
        self, host: str, server: socketserver.TCPServer, tls: ssl.SSLContext | None = None
    ) -> None:
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self.host = host
        self.port = server.server_address[1]
        self.scheme = "https" if tls else "http"

    def url(self, path: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{path}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()


class FeedServer(Loopback):
    """Serves ``routes`` on ``host`` (any 127.x.y.z works on Linux, and ``::1``) at a free port."""

    def __init__(self, host: str = "127.0.0.1", *, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.max_in_flight = 0
        self.connections = 0
        """TCP connections accepted so far."""
        self._in_flight = 0
        self._lock = threading.Lock()
        server = (_QuietServer6 if ":" in host else _QuietServer)((host, 0), self._handler())
        server.daemon_threads = True
        super().__init__(host, server, tls)

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    def _answer(self, seen: Seen) -> Reply:
        route = self.routes.get(seen.path)
        if route is None:
            return Reply(404, b"not here")
        return route(seen) if callable(route) else route

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: pytest shows failures, not access logs

            def setup(self) -> None:  # one handler per connection
                super().setup()
                with server._lock:
                    server.connections += 1

            def do_POST(self) -> None:
                self.do_GET(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def do_GET(self, body: bytes = b"") -> None:
                seen = Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with server._lock:
                    server.seen.append(seen)
                    server._in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server._in_flight)
                try:
                    reply = server._answer(seen)
                    if reply.hang:
                        server._stopping.wait(60)
                        return
                    if reply.delay:
                        time.sleep(reply.delay)
                finally:
                    # Out of flight before the answer goes out: once the client has read it, it
                    # may send its next request before this thread would get to run again.
                    with server._lock:
                        server._in_flight -= 1
                self._reply(reply)

            def _reply(self, reply: Reply) -> None:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if callable(reply.body):
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    try:
                        for chunk in reply.body():
                            if server._stopping.is_set():
                                return
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.write(b"0\r\n\r\n")
                    except (BrokenPipeError, ConnectionResetError):
                        return
                else:
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    try:
                        self.wfile.write(reply.body)
                    except (BrokenPipeError, ConnectionResetError):
                        return

        return Handler


class FloodServer(Loopback):
    """A hostile server: every connection gets a 200 with an endless chunked body at once, before
    the request is even read, written as fast as the socket takes it (big writes of one
    never-ending chunk), so the client's buffers fill as fast as loopback carries bytes."""

    BLOCK = b"x" * (4 * 1024 * 1024)

    def __init__(self, host: str = "127.0.0.1") -> None:
        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                connection: socket.socket = self.request
                head = b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n"
                head += b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % (1 << 40)
                try:
                    connection.sendall(head)
                    while True:
                        connection.sendall(FloodServer.BLOCK)
                except OSError:
                    return  # the client hung up: what a capped client does

        server = socketserver.ThreadingTCPServer((host, 0), Handler)
        server.daemon_threads = True
        super().__init__(host, server)


def needs_login(user: str, password: str, reply: Reply) -> Callable[[Seen], Reply]:
    """A route answering ``reply`` to requests with these Basic credentials, and 401 to others."""
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def route(seen: Seen) -> Reply:
        if seen.headers.get("authorization") == expected:
            return reply
        return Reply(401, b"log in first", {"WWW-Authenticate": 'Basic realm="feeds"'})

    return route


def endless() -> Iterator[bytes]:
    """A body that never ends: a feed's start, then filler forever."""
    yield b'<?xml version="1.0"?><rss version="2.0"><channel><title>Endless</title>'
    while True:
        yield b"<!-- " + b"x" * 65536 + b" -->"


@cache
def gzip_bomb(megabytes: int = 64) -> bytes:
    """``megabytes`` of zeros, gzip-compressed to a few dozen kilobytes."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (1024 * 1024)
    parts = [compressor.compress(block) for _ in range(megabytes)]
    return b"".join(parts) + compressor.flush()


def rss(title: str, *items: tuple[str, str], channel_title: str = "Served") -> bytes:
    """A small RSS 2.0 document; ``items`` are (guid, text) pairs."""
    body = "".join(
        f'<item><title>{title} {guid}</title><guid isPermaLink="false">{guid}</guid>'
        f"<description>&lt;p&gt;{text}&lt;/p&gt;</description></item>"
        for guid, text in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{channel_title}</title><link>https://served.example/</link>{body}</channel></rss>"
    ).encode()


def farm(server: FeedServer, feeds: int, *, delay: float = 0.0) -> list[str]:
    """Serve ``feeds`` RSS feeds at ``/farm/<i>.xml``; their URLs.

    Each holds two items of its own and one item every feed shares (one post, ``feeds``
    sightings), so a store that lost or doubled anything differs from a clean run's.
    """
    urls = []
    for index in range(feeds):
        document = rss(
            "Farm",
            (f"{index}-a", f"first of feed {index}"),
            (f"{index}-b", f"second of feed {index}"),
            ("shared", "the same story everywhere"),
            channel_title=f"Feed {index}",
        )
        path = f"/farm/{index}.xml"
        server.routes[path] = Reply(200, document, {"ETag": f'"{index}"'}, delay=delay)
        urls.append(server.url(path))
    return urls
