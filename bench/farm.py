"""A loopback feed farm: N RSS feeds of M items over HTTP/1.1, with ETags and 304s.

What it serves (``python -m bench.farm --feeds N --items M [--seed S]``):

- ``GET /feeds/<i>.xml`` for ``0 <= i < N``: feed ``i`` of ``bench.corpus`` (RSS 2.0, M items
  of ~3 KB HTML each, mixed Chinese and English), ``200 OK`` with ``Content-Type:
  application/rss+xml; charset=utf-8``, ``Content-Length``, a strong ``ETag`` (a hash of the
  document) and a fixed ``Last-Modified``. No compression (``Content-Encoding`` is identity).
- the same request with ``If-None-Match`` naming that ETag (or ``*``), or with no
  ``If-None-Match`` and an ``If-Modified-Since`` equal to ``Last-Modified``: ``304 Not
  Modified`` with the validators and no body.
- ``GET /_stats``: JSON counters (requests, responses by status, connections) and the farm's own
  CPU seconds, so a benchmark can check what each pass really fetched and that the farm was
  not the bottleneck. Stats requests are not counted.
- anything else: ``404``.

Every response is precomputed at start-up, so serving costs a dictionary look-up and a socket
write. Connections are kept alive (HTTP/1.1; ``Connection: close`` is honoured) and pipelined
requests are answered in order. The farm listens on the same port on ``--hosts`` loopback
addresses, 127.0.0.1 to 127.0.0.<hosts>, and on nothing else: feed ``i`` is served on host
``127.0.0.<1 + i % hosts>`` (any host answers for any feed), so a client limiting requests per
host still sees many hosts. Once it is ready it prints one JSON line (port, hosts, feeds,
items, bytes) on stdout; it stops on SIGTERM/SIGINT, or by itself after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import resource
import signal
import socket
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import format_datetime
from types import TracebackType
from typing import Any

from bench.corpus import EPOCH, SEED, feed_document

HOSTS = 64
MAX_SECONDS = 3 * 3600
_HEAD_END = b"\r\n\r\n"
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


def host_of(feed: int, hosts: int = HOSTS) -> str:
    return f"127.0.0.{1 + feed % hosts}"


def feed_url(port: int, feed: int, hosts: int = HOSTS) -> str:
    return f"http://{host_of(feed, hosts)}:{port}/feeds/{feed}.xml"


@dataclass(frozen=True, slots=True)
class Responses:
    """One feed's precomputed answers."""

    ok: bytes
    not_modified: bytes
    etag: str


class Catalog:
    """Every feed's responses by path, and the counters ``/_stats`` reports."""

    def __init__(self, feeds: int, items: int, seed: int) -> None:
        self.last_modified = format_datetime(EPOCH, usegmt=True)
        self.by_path: dict[bytes, Responses] = {}
        self.bytes = 0
        for feed in range(feeds):
            document = feed_document(feed, items, seed=seed)
            self.bytes += len(document)
            self.by_path[f"/feeds/{feed}.xml".encode()] = self._responses(document)
        self.counts: Counter[str] = Counter()

    def _responses(self, document: bytes) -> Responses:
        etag = '"' + hashlib.blake2b(document, digest_size=10).hexdigest() + '"'
        validators = f"ETag: {etag}\r\nLast-Modified: {self.last_modified}\r\n"
        ok = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml; charset=utf-8\r\n"
            f"Content-Length: {len(document)}\r\n{validators}\r\n"
        ).encode() + document
        not_modified = f"HTTP/1.1 304 Not Modified\r\n{validators}\r\n".encode()
        return Responses(ok=ok, not_modified=not_modified, etag=etag)

    def answer(self, path: bytes, headers: dict[bytes, bytes]) -> bytes:
        if path == b"/_stats":
            return self._stats()
        self.counts["requests"] += 1
        responses = self.by_path.get(path)
        if responses is None:
            self.counts["404"] += 1
            return _NOT_FOUND
        if self._unchanged(responses, headers):
            self.counts["304"] += 1
            return responses.not_modified
        self.counts["200"] += 1
        return responses.ok

    def _unchanged(self, responses: Responses, headers: dict[bytes, bytes]) -> bool:
        # RFC 9110 13.1.3: If-Modified-Since is ignored when If-None-Match is present.
        none_match = headers.get(b"if-none-match")
        if none_match is not None:
            tags = {tag.strip().removeprefix("W/") for tag in none_match.decode().split(",")}
            return "*" in tags or responses.etag in tags
        return headers.get(b"if-modified-since", b"").decode() == self.last_modified

    def _stats(self) -> bytes:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        body = json.dumps(
            {**self.counts, "cpu_s": round(usage.ru_utime + usage.ru_stime, 3)}
        ).encode()
        return (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body


class FarmProtocol(asyncio.Protocol):
    """HTTP/1.1 for GET requests without bodies: enough for feed readers, and fast."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.catalog.counts["connections"] += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(_HEAD_END)) >= 0 and self.transport is not None:
            head = bytes(self.buffer[:end])
            del self.buffer[: end + len(_HEAD_END)]
            request_line, *lines = head.split(b"\r\n")
            parts = request_line.split(b" ")
            headers: dict[bytes, bytes] = {}
            for line in lines:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            path = parts[1].split(b"?", 1)[0] if len(parts) == 3 else b""
            self.transport.write(self.catalog.answer(path, headers))
            if headers.get(b"connection", b"").lower() == b"close":
                self.transport.close()
                self.transport = None


def _listening_sockets(hosts: int, port: int) -> list[socket.socket]:
    sockets: list[socket.socket] = []
    for index in range(hosts):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((f"127.0.0.{1 + index}", port))
        sock.listen(4096)
        port = port or sock.getsockname()[1]
        sockets.append(sock)
    return sockets


async def serve(feeds: int, items: int, *, seed: int, hosts: int, max_seconds: float) -> None:
    catalog = Catalog(feeds, items, seed)
    loop = asyncio.get_running_loop()
    sockets = _listening_sockets(hosts, 0)
    servers = [
        await loop.create_server(lambda: FarmProtocol(catalog), sock=sock) for sock in sockets
    ]
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    ready = {
        "port": sockets[0].getsockname()[1],
        "hosts": hosts,
        "feeds": feeds,
        "items": items,
        "bytes": catalog.bytes,
    }
    print(json.dumps(ready), flush=True)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max_seconds)
    for server in servers:
        server.close()


class Farm:
    """The farm as a child process: ``with Farm(feeds, items) as farm: farm.urls()``."""

    def __init__(self, feeds: int, items: int, *, seed: int = SEED, hosts: int = HOSTS) -> None:
        self.feeds = feeds
        self.items = items
        self.seed = seed
        self.hosts = min(hosts, max(feeds, 1))
        self.port = 0
        self.bytes = 0
        self._process: subprocess.Popen[str] | None = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __enter__(self) -> Farm:
        command = [
            sys.executable,
            "-m",
            "bench.farm",
            f"--feeds={self.feeds}",
            f"--items={self.items}",
            f"--seed={self.seed}",
            f"--hosts={self.hosts}",
        ]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            self.__exit__(None, None, None)
            raise RuntimeError(f"the feed farm did not start (exit code {self._process.poll()})")
        ready = json.loads(line)
        self.port = int(ready["port"])
        self.bytes = int(ready["bytes"])
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout:
            self._process.stdout.close()

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def urls(self) -> list[str]:
        return [feed_url(self.port, feed, self.hosts) for feed in range(self.feeds)]

    def stats(self) -> dict[str, Any]:
        with self._opener.open(f"http://127.0.0.1:{self.port}/_stats", timeout=10) as response:
            stats: dict[str, Any] = json.load(response)
        return stats


def stats_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What happened at the farm between two ``Farm.stats()`` readings."""
    keys = set(before) | set(after)
    return {key: round(after.get(key, 0) - before.get(key, 0), 3) for key in sorted(keys)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--hosts", type=int, default=HOSTS, choices=range(1, 255), metavar="1-254")
    parser.add_argument("--max-seconds", type=float, default=MAX_SECONDS)
    args = parser.parse_args(argv)
    asyncio.run(
        serve(
            args.feeds, args.items, seed=args.seed, hosts=args.hosts, max_seconds=args.max_seconds
        )
    )


if __name__ == "__main__":
    main()
