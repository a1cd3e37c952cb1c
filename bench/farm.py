"""A loopback feed farm: N RSS feeds of M items over HTTP/1.1 or HTTPS, with ETags and 304s.

What it serves (``python -m bench.farm --feeds N --items M [--seed S] [options]``):

- ``GET /feeds/<i>.xml`` for ``0 <= i < N``: feed ``i`` of ``bench.corpus`` (RSS 2.0, M items
  of ~3 KB HTML each, mixed Chinese and English), ``200 OK`` with ``Content-Type:
  application/rss+xml; charset=utf-8``, ``Content-Length``, a strong ``ETag`` (a hash of the
  document) and a ``Last-Modified`` (the same for every feed, an hour later per revision).
- with ``--replay DIR``, also ``GET /replay/<j>.xml``: the well-formed RSS 2.0, RSS 1.0 and
  Atom 1.0 files of ``DIR`` (``tests/data/corpus``, by its ``MANIFEST.tsv``) byte for byte,
  the same way (ETag, 304).
- the same request with ``If-None-Match`` naming that ETag (or ``*``), or with no
  ``If-None-Match`` and an ``If-Modified-Since`` equal to ``Last-Modified``: ``304 Not
  Modified`` with the validators and no body.
- ``--gzip``: a request whose ``Accept-Encoding`` names gzip gets the body gzip-compressed
  (``Content-Encoding: gzip``, an ETag of its own); others get it as it is.
- ``--latency-ms L``: every response leaves L ms after its request arrived (in order).
- ``--tls-cert``/``--tls-key``: HTTPS only, with that certificate (the benchmark makes one with
  ``trustme`` and a CA both tools are told to trust).
- ``POST /_revise?round=R``: a tenth (``--change-share``) of the generated feeds, every
  ``1/share``-th one, is served at revision R of ``bench.corpus.feed_document`` (R new items
  and one edited), the others as they are; ``round=0`` puts every feed back. The answer lists
  the changed feeds. Not counted.
- ``GET /_stats``: JSON counters (requests, responses by status, gzip bodies, connections) and
  the farm's own CPU seconds, so a benchmark can check what each pass really fetched and that
  the farm was not the bottleneck. Not counted.
- anything else: ``404``.

Every response is precomputed, so serving costs a dictionary look-up and a socket write.
Connections are kept alive (HTTP/1.1; ``Connection: close`` is honoured) and pipelined
requests are answered in order. The farm listens on the same port on ``--hosts`` loopback
addresses, 127.0.0.1 to 127.0.0.<hosts>, and on nothing else: feed ``i`` is served on host
``127.0.0.<1 + i % hosts>`` (any host answers for any feed). ``--hosts 1`` is a self-hosted
RSSHub: every feed on one address. Once it is ready it prints one JSON line (port, hosts,
feeds, items, replayed, bytes) on stdout; it stops on SIGTERM/SIGINT, or by itself after
``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gzip
import hashlib
import json
import resource
import signal
import socket
import ssl
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

from bench.corpus import EPOCH, SEED, feed_document

HOSTS = 64
CHANGE_SHARE = 0.10
MAX_SECONDS = 3 * 3600
REPLAYED_FORMATS = frozenset({"rss2.0", "atom1.0", "rss1.0/rdf"})
_HEAD_END = b"\r\n\r\n"
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


def host_of(feed: int, hosts: int = HOSTS) -> str:
    return f"127.0.0.{1 + feed % hosts}"


def feed_url(port: int, feed: int, hosts: int = HOSTS, scheme: str = "http") -> str:
    return f"{scheme}://{host_of(feed, hosts)}:{port}/feeds/{feed}.xml"


def replay_url(port: int, index: int, hosts: int = HOSTS, scheme: str = "http") -> str:
    return f"{scheme}://{host_of(index, hosts)}:{port}/replay/{index}.xml"


def replayed_files(folder: Path) -> list[Path]:
    """The files of a corpus folder the farm replays: by its ``MANIFEST.tsv``, the well-formed
    RSS 2.0, RSS 1.0 and Atom 1.0 documents with at least one entry, in the manifest's order."""
    lines = (folder / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    rows = [dict(zip(header, line.split("\t"), strict=False)) for line in lines[1:]]
    return [
        folder / row["path"]
        for row in rows
        if row["format"] in REPLAYED_FORMATS
        and row["parse_check"] == "wellformed"
        and row["items_or_entries"].isdigit()
        and int(row["items_or_entries"]) > 0
    ]


def changed_feeds(feeds: int, share: float = CHANGE_SHARE) -> list[int]:
    """The generated feeds a revision changes: every ``1/share``-th one, spread over hosts."""
    step = max(round(1 / share), 1)
    return list(range(0, feeds, step))


@dataclass(frozen=True, slots=True)
class Responses:
    """One document's precomputed answers: identity and (with ``--gzip``) gzip-compressed."""

    ok: bytes
    not_modified: bytes
    etags: frozenset[str]
    last_modified: str
    gzip_ok: bytes | None = None
    gzip_not_modified: bytes | None = None


@dataclass(frozen=True, slots=True)
class Options:
    """How the farm serves: its documents, compression and delay."""

    feeds: int
    items: int
    seed: int = SEED
    gzip: bool = False
    latency_s: float = 0.0
    replay: Path | None = None
    change_share: float = CHANGE_SHARE


class Catalog:
    """Every document's responses by path, and the counters ``/_stats`` reports."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.by_path: dict[bytes, Responses] = {}
        self.bytes = 0
        for feed in range(options.feeds):
            self._serve(feed, 0)
        self.replayed = 0
        for index, path in enumerate(replayed_files(options.replay) if options.replay else []):
            document = path.read_bytes()
            self.bytes += len(document)
            self.by_path[f"/replay/{index}.xml".encode()] = self._responses(
                document, "application/xml"
            )
            self.replayed += 1
        self.counts: Counter[str] = Counter()

    def _serve(self, feed: int, revision: int) -> None:
        document = feed_document(
            feed, self.options.items, seed=self.options.seed, revision=revision
        )
        if revision == 0:
            self.bytes += len(document)
        self.by_path[f"/feeds/{feed}.xml".encode()] = self._responses(
            document, "application/rss+xml; charset=utf-8", revision
        )

    def revise(self, revision: int) -> list[int]:
        """Serve the changing share of the feeds at ``revision`` (0: as generated)."""
        changed = changed_feeds(self.options.feeds, self.options.change_share)
        for feed in changed:
            self._serve(feed, revision)
        return changed

    def _responses(self, document: bytes, content_type: str, revision: int = 0) -> Responses:
        """The answers for ``document``; a later revision is modified an hour later."""
        etag = '"' + hashlib.blake2b(document, digest_size=10).hexdigest() + '"'
        modified = format_datetime(EPOCH + timedelta(hours=revision), usegmt=True)
        ok, not_modified = self._pair(document, content_type, f"ETag: {etag}", modified)
        if not self.options.gzip:
            return Responses(ok, not_modified, frozenset({etag}), modified)
        gzip_etag = etag[:-1] + '-gzip"'
        packed = gzip.compress(document, compresslevel=6, mtime=0)
        extra = f"ETag: {gzip_etag}\r\nContent-Encoding: gzip\r\nVary: Accept-Encoding"
        gzip_ok, gzip_not_modified = self._pair(packed, content_type, extra, modified)
        return Responses(
            ok, not_modified, frozenset({etag, gzip_etag}), modified, gzip_ok, gzip_not_modified
        )

    def _pair(
        self, body: bytes, content_type: str, extra: str, modified: str
    ) -> tuple[bytes, bytes]:
        validators = f"{extra}\r\nLast-Modified: {modified}\r\n"
        ok = (
            f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n{validators}\r\n"
        ).encode() + body
        return ok, f"HTTP/1.1 304 Not Modified\r\n{validators}\r\n".encode()

    def answer(self, method: bytes, target: bytes, headers: dict[bytes, bytes]) -> bytes:
        path, _, query = target.partition(b"?")
        if path == b"/_stats":
            return self._stats()
        if path == b"/_revise" and method == b"POST":
            rounds = parse_qs(query.decode()).get("round", ["0"])
            return _json_response({"changed": self.revise(int(rounds[0]))})
        self.counts["requests"] += 1
        responses = self.by_path.get(path)
        if responses is None:
            self.counts["404"] += 1
            return _NOT_FOUND
        packed = responses.gzip_ok is not None and b"gzip" in headers.get(b"accept-encoding", b"")
        if packed:
            self.counts["gzip"] += 1
        if self._unchanged(responses, headers):
            self.counts["304"] += 1
            return (responses.gzip_not_modified if packed else None) or responses.not_modified
        self.counts["200"] += 1
        return (responses.gzip_ok if packed else None) or responses.ok

    def _unchanged(self, responses: Responses, headers: dict[bytes, bytes]) -> bool:
        # RFC 9110 13.1.3: If-Modified-Since is ignored when If-None-Match is present.
        none_match = headers.get(b"if-none-match")
        if none_match is not None:
            tags = {tag.strip().removeprefix("W/") for tag in none_match.decode().split(",")}
            return "*" in tags or bool(responses.etags & tags)
        return headers.get(b"if-modified-since", b"").decode() == responses.last_modified

    def _stats(self) -> bytes:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return _json_response({**self.counts, "cpu_s": round(usage.ru_utime + usage.ru_stime, 3)})


def _json_response(content: object) -> bytes:
    body = json.dumps(content).encode()
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class FarmProtocol(asyncio.Protocol):
    """HTTP/1.1 for requests without bodies: enough for feed readers, and fast."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.latency_s = catalog.options.latency_s
        self.pending: collections.deque[tuple[float, bytes, bool]] = collections.deque()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.catalog.counts["connections"] += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

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
            method, target = (parts[0], parts[1]) if len(parts) == 3 else (b"", b"")
            response = self.catalog.answer(method, target, headers)
            close = headers.get(b"connection", b"").lower() == b"close"
            if self.latency_s and not target.startswith(b"/_"):
                loop = asyncio.get_running_loop()
                self.pending.append((loop.time() + self.latency_s, response, close))
                loop.call_later(self.latency_s, self._flush)
            else:
                self._send(response, close=close)

    def _flush(self) -> None:
        """Send the delayed responses that are due, in the order their requests came."""
        now = asyncio.get_running_loop().time()
        while self.pending and self.pending[0][0] <= now:
            _, response, close = self.pending.popleft()
            self._send(response, close=close)

    def _send(self, response: bytes, *, close: bool) -> None:
        if self.transport is None:
            return
        self.transport.write(response)
        if close:
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


def _server_tls(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    if cert is None or key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def serve(
    options: Options,
    *,
    hosts: int,
    max_seconds: float,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
) -> None:
    catalog = Catalog(options)
    loop = asyncio.get_running_loop()
    sockets = _listening_sockets(hosts, 0)
    tls = _server_tls(tls_cert, tls_key)
    servers = [
        await loop.create_server(lambda: FarmProtocol(catalog), sock=sock, ssl=tls)
        for sock in sockets
    ]
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    ready = {
        "port": sockets[0].getsockname()[1],
        "hosts": hosts,
        "feeds": options.feeds,
        "items": options.items,
        "replayed": catalog.replayed,
        "bytes": catalog.bytes,
    }
    print(json.dumps(ready), flush=True)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max_seconds)
    for server in servers:
        server.close()


class Farm:
    """The farm as a child process: ``with Farm(feeds, items) as farm: farm.urls()``.

    ``tls`` is a (certificate chain, private key, CA certificate) triple of files: the farm
    serves HTTPS with the first two and this side trusts the third.
    """

    def __init__(
        self,
        feeds: int,
        items: int,
        *,
        seed: int = SEED,
        hosts: int = HOSTS,
        gzip: bool = False,
        latency_ms: float = 0.0,
        replay: Path | None = None,
        tls: tuple[Path, Path, Path] | None = None,
    ) -> None:
        self.options = Options(
            feeds=feeds,
            items=items,
            seed=seed,
            gzip=gzip,
            latency_s=latency_ms / 1000,
            replay=replay,
        )
        self.feeds = feeds
        self.items = items
        self.seed = seed
        self.hosts = min(hosts, max(feeds, 1))
        self.tls = tls
        self.scheme = "https" if tls else "http"
        self.port = 0
        self.bytes = 0
        self.replayed = 0
        self._process: subprocess.Popen[str] | None = None
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
        if tls:
            context = ssl.create_default_context(cafile=str(tls[2]))
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self._opener = urllib.request.build_opener(*handlers)

    def __enter__(self) -> Farm:
        options = self.options
        command = [
            sys.executable,
            "-m",
            "bench.farm",
            f"--feeds={self.feeds}",
            f"--items={self.items}",
            f"--seed={self.seed}",
            f"--hosts={self.hosts}",
            f"--latency-ms={options.latency_s * 1000:g}",
        ]
        command += ["--gzip"] if options.gzip else []
        command += [f"--replay={options.replay}"] if options.replay else []
        if self.tls:
            command += [f"--tls-cert={self.tls[0]}", f"--tls-key={self.tls[1]}"]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            self.__exit__(None, None, None)
            raise RuntimeError(f"the feed farm did not start (exit code {self._process.poll()})")
        ready = json.loads(line)
        self.port = int(ready["port"])
        self.bytes = int(ready["bytes"])
        self.replayed = int(ready["replayed"])
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

    @property
    def documents(self) -> int:
        """Every URL the farm serves: the generated feeds and the replayed files."""
        return self.feeds + self.replayed

    def urls(self) -> list[str]:
        generated = [feed_url(self.port, f, self.hosts, self.scheme) for f in range(self.feeds)]
        replayed = [replay_url(self.port, i, self.hosts, self.scheme) for i in range(self.replayed)]
        return generated + replayed

    def _call(self, path: str, *, post: bool = False) -> Any:
        url = f"{self.scheme}://127.0.0.1:{self.port}{path}"
        request = urllib.request.Request(url, data=b"" if post else None)
        with self._opener.open(request, timeout=60) as response:
            return json.load(response)

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self._call("/_stats")
        return stats

    def revise(self, revision: int) -> list[int]:
        """Serve the changing share of the feeds at ``revision`` (0: back as generated)."""
        changed: list[int] = self._call(f"/_revise?round={revision}", post=True)["changed"]
        return changed


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
    parser.add_argument(
        "--gzip", action="store_true", help="gzip bodies for clients that accept it"
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay of every response")
    parser.add_argument("--replay", type=Path, help="also serve this corpus folder's feeds")
    parser.add_argument("--change-share", type=float, default=CHANGE_SHARE)
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate chain")
    parser.add_argument("--tls-key", type=Path, help="and this private key")
    parser.add_argument("--max-seconds", type=float, default=MAX_SECONDS)
    args = parser.parse_args(argv)
    options = Options(
        feeds=args.feeds,
        items=args.items,
        seed=args.seed,
        gzip=args.gzip,
        latency_s=args.latency_ms / 1000,
        replay=args.replay,
        change_share=args.change_share,
    )
    asyncio.run(
        serve(
            options,
            hosts=args.hosts,
            max_seconds=args.max_seconds,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
        )
    )


if __name__ == "__main__":
    main()
