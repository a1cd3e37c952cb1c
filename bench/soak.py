"""A soak test of ``ingest serve``: an hour (or more) of polling a live loopback feed farm.

``python -m bench.soak --minutes 60 --feeds 300`` starts a farm whose feeds keep publishing
(each gains an item every 20 s to 3.5 min; ETags follow), some of them misbehaving on and off
(500s, slow answers, 429 with Retry-After, one 410 for good), runs ``ingest serve`` against it
with short intervals, and every 10 s samples the daemon's memory (RSS and PSS of its process
tree) and its ``/healthz``. At the end it stops the daemon with SIGTERM and checks:

- the daemon exited with status 0;
- its log has no event at level ``error`` (warnings are expected: the misbehaving feeds);
- ``/healthz`` answered 200 at every sample after the first minute;
- memory is steady: the average RSS of the last tenth of the run is within 15 % of the
  second tenth's (the first tenth is start-up);
- the store is sound (``PRAGMA integrity_check``), and holds each published item once.

It prints the figures, writes them as JSON (``--json``), and exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import psutil

from bench.corpus import SEED, item_body, item_title

ITEMS_KEPT = 20
"""Each document lists its latest 20 items, like most feeds: older ones drop out."""
SAMPLE_S = 10.0
"""Seconds between two samples of memory and /healthz."""


def period_of(feed: int) -> float:
    return 20.0 + (feed % 13) * 15.0


def behaviour(feed: int, elapsed: float) -> str:
    """How feed ``feed`` answers ``elapsed`` seconds into the run."""
    window = int(elapsed // 120) % 2  # misbehaving feeds alternate every two minutes
    if feed % 100 == 99 and elapsed > 600:
        return "gone"
    if feed % 20 == 7 and window:
        return "error"
    if feed % 50 == 21 and window:
        return "throttled"
    if feed % 20 == 13:
        return "slow"
    return "ok"


class LiveFarm:
    """The feeds, their documents (cached per item count) and the HTTP answers."""

    def __init__(self, feeds: int) -> None:
        self.feeds = feeds
        self.started = time.monotonic()
        self.cache: dict[tuple[int, int], bytes] = {}
        self.counts: Counter[str] = Counter()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def published(self, feed: int, elapsed: float | None = None) -> int:
        return 3 + int((self.elapsed() if elapsed is None else elapsed) // period_of(feed))

    def document(self, feed: int, count: int) -> bytes:
        key = (feed, count)
        if key not in self.cache:
            if len(self.cache) > 4 * self.feeds:
                self.cache.clear()
            self.cache[key] = _document(feed, count)
        return self.cache[key]

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if not path.startswith("/feeds/") or not path.endswith(".xml"):
            return 404, {}, b""
        feed = int(path.removeprefix("/feeds/").removesuffix(".xml"))
        mode = behaviour(feed, self.elapsed())
        self.counts[mode] += 1
        if mode == "gone":
            return 410, {}, b"gone"
        if mode == "error":
            return 500, {}, b"down for maintenance"
        if mode == "throttled":
            return 429, {"Retry-After": "30"}, b"slow down"
        count = self.published(feed)
        etag = f'"{feed}-{count}"'
        if headers.get("if-none-match") == etag:
            self.counts["304"] += 1
            return 304, {"ETag": etag}, b""
        return (
            200,
            {"ETag": etag, "Content-Type": "application/rss+xml"},
            self.document(feed, count),
        )


def _document(feed: int, count: int) -> bytes:
    now = datetime.now(UTC)
    items = []
    for item in range(max(0, count - ITEMS_KEPT), count):
        rng = random.Random(SEED * 7919 + feed * 100_003 + item)
        title = item_title(rng, feed, item)
        published = format_datetime(now - timedelta(minutes=count - item), usegmt=True)
        items.append(
            f"<item><title><![CDATA[{title}]]></title>"
            f"<description><![CDATA[{item_body(rng, feed, item, title)}]]></description>"
            f'<pubDate>{published}</pubDate><guid isPermaLink="false">soak-{feed}-{item}</guid>'
            "</item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Soak {feed}</title><link>https://soak.example/{feed}</link>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


class _Protocol(asyncio.Protocol):
    def __init__(self, farm: LiveFarm) -> None:
        self.farm = farm
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            line, *rest = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in rest)}
            path = line.split(" ")[1] if line.count(" ") >= 2 else ""
            status, extra, body = self.farm.answer(path, headers)
            delay = 3.0 if behaviour(_feed_of(path), self.farm.elapsed()) == "slow" else 0.0
            asyncio.get_running_loop().call_later(delay, self._send, status, extra, body)

    def _send(self, status: int, extra: dict[str, str], body: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in extra.items()]
        self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)


def _feed_of(path: str) -> int:
    try:
        return int(path.removeprefix("/feeds/").removesuffix(".xml"))
    except ValueError:
        return -1


def start_farm(farm: LiveFarm) -> int:
    """Serve ``farm`` on 127.0.0.1 from a thread; its port."""
    ready = threading.Event()
    port: list[int] = []

    def run() -> None:
        loop = asyncio.new_event_loop()
        server = loop.run_until_complete(
            loop.create_server(lambda: _Protocol(farm), "127.0.0.1", 0)
        )
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        loop.run_forever()

    threading.Thread(target=run, name="farm", daemon=True).start()
    ready.wait()
    return port[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_config(folder: Path, farm_port: int, feeds: int, port: int) -> Path:
    lines = [
        '[defaults]\ninterval = "30s"',
        '[schedule]\nmin_interval = "10s"\nmax_interval = "1m"\nbackoff_cap = "2m"',
        "[fetch]\nallow_private_networks = true",
        f'[serve]\nport = {port}\ntick = "2s"\ngrace = "8s"',
        '[log]\nformat = "json"',
    ]
    lines += [
        f'[[sources]]\nurl = "http://127.0.0.1:{farm_port}/feeds/{feed}.xml"'
        for feed in range(feeds)
    ]
    path = folder / "ingest.toml"
    path.write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    return path


def tree_memory(process: psutil.Process) -> tuple[float, float]:
    """RSS and PSS, MB, of ``process`` and its descendants."""
    rss = pss = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            info = member.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
    return rss / 2**20, pss / 2**20


def healthz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def soak(minutes: float, feeds: int, workdir: Path) -> dict[str, Any]:
    farm = LiveFarm(feeds)
    farm_port = start_farm(farm)
    port = free_port()
    config = write_config(workdir, farm_port, feeds, port)
    db = workdir / "soak.db"
    log_path = workdir / "serve.log"
    ingest = str(Path(sys.executable).parent / "ingest")
    samples: list[dict[str, float]] = []
    with log_path.open("w") as log:
        daemon = subprocess.Popen(
            [ingest, "--db", f"sqlite:///{db}", "--config", str(config), "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        process = psutil.Process(daemon.pid)
        started = time.monotonic()
        try:
            while time.monotonic() - started < minutes * 60:
                time.sleep(SAMPLE_S)
                rss, pss = tree_memory(process)
                samples.append(
                    {
                        "t_s": round(time.monotonic() - started, 1),
                        "rss_mb": round(rss, 1),
                        "pss_mb": round(pss, 1),
                        "healthz": healthz(port),
                    }
                )
            last_poll = farm.elapsed()
            daemon.send_signal(signal.SIGTERM)
            exit_code = daemon.wait(60)
        finally:
            if daemon.poll() is None:
                daemon.kill()
    return _report(
        farm,
        samples=samples,
        exit_code=exit_code,
        log_path=log_path,
        db=db,
        last_poll=last_poll,
        minutes=minutes,
    )


def _report(
    farm: LiveFarm,
    *,
    samples: list[dict[str, float]],
    exit_code: int,
    log_path: Path,
    db: Path,
    last_poll: float,
    minutes: float,
) -> dict[str, Any]:
    events = [
        json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")
    ]
    levels = Counter(event.get("level", "?") for event in events)
    statuses = Counter(e["status"] for e in events if e.get("event") == "source_processed")
    errors = [e for e in events if e.get("level") in ("error", "critical")]
    tenth = len(samples) // 10
    if tenth:
        early = sum(s["rss_mb"] for s in samples[tenth : 2 * tenth]) / tenth
        late = sum(s["rss_mb"] for s in samples[-tenth:]) / tenth
    else:  # a short run: first sample against last
        early, late = samples[0]["rss_mb"], samples[-1]["rss_mb"]
    unhealthy = [s for s in samples if s["t_s"] > 60 and s["healthz"] != 200]
    with contextlib.closing(sqlite3.connect(db)) as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        stored = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
        keys = conn.execute("SELECT count(DISTINCT entry_key) FROM sightings").fetchone()[0]
    # Items every healthy feed published two poll intervals (1 min at most) before the end:
    # each must be stored. Feeds that were failing may lag; the gone one stops.
    expected = sum(
        farm.published(feed, last_poll - 120)
        for feed in range(farm.feeds)
        if behaviour(feed, 0) == "ok" and feed % 100 != 99
    )
    checks = {
        "exit code 0": exit_code == 0,
        "no error in the log": not errors,
        "healthz 200 after the first minute": not unhealthy,
        "memory steady (late <= early + 15%)": late <= early * 1.15,
        "store sound": integrity == "ok",
        "every published item stored once": stored == keys and stored >= expected,
    }
    return {
        "minutes": minutes,
        "feeds": farm.feeds,
        "exit_code": exit_code,
        "log_levels": dict(levels),
        "statuses": dict(statuses),
        "first_errors": errors[:5],
        "farm_answers": dict(farm.counts),
        "rss_mb": {
            "early": round(early, 1),
            "late": round(late, 1),
            "max": max(s["rss_mb"] for s in samples),
        },
        "pss_mb_max": max(s["pss_mb"] for s in samples),
        "unhealthy_samples": len(unhealthy),
        "posts": stored,
        "entry_keys": keys,
        "expected_at_least": expected,
        "checks": checks,
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument("--workdir", type=Path, help="keep the store and log here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="soak-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        report = soak(args.minutes, args.feeds, workdir)
    summary = {k: v for k, v in report.items() if k != "samples"}
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    return 0 if all(report["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
