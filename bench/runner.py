"""One pass of one tool over the farm's feeds, in a process of its own.

``python -m bench.runner ours|reader --workdir DIR --urls FILE --workers N --out FILE``

The process is the unit the benchmark times from the outside (start-up, imports, the pass,
exit), so it does nothing else: counting what the stores hold is the harness's job
(``count_ours``, ``count_reader``), afterwards.

- ``ours``: what the ``ingest`` console script runs (``ingest.cli.app``), with the arguments
  cron would give it: ``--db sqlite:///DIR/ours.db --config DIR/ingest.toml run --all``. The
  config lists every URL, ``[fetch] concurrency = N`` and ``per_host = N`` (N requests in flight,
  whatever the hosts) and ``allow_private_networks = true`` (the farm is on loopback). A run
  keeps the search index current by itself. The log (one line per source, as a user gets it)
  goes to this process's stderr.
- ``reader``: the smallest program a reader user writes for the same job:
  ``make_reader(DIR/reader.sqlite)``, on a new store ``enable_search()`` and ``add_feed`` for
  every URL, then ``update_feeds_iter(scheduled=False, workers=N)`` (all feeds, like ``--all``)
  and ``update_search()``, so its search index is as current as ours. Over HTTPS its session
  trusts the CA ``REQUESTS_CA_BUNDLE`` names (``trust_ca``).
- ``reader-search --query WORD``: reader's first search after a run, in a process of its own,
  as ``ingest entries search WORD`` is ours.
- ``durability ours|reader``: the journal mode and ``synchronous`` setting each tool's own
  connection runs with, read from that connection (not from this file), printed as JSON.

``--out`` gets one JSON object: the in-process figures (``Span``: seconds and CPU seconds of the
main thread, the process's other threads and the waited-for worker processes, imports and
interpreter start-up excluded), the tool's own counts, ``finished_at`` and ``pid``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

OURS_DB = "ours.db"
READER_DB = "reader.sqlite"
CONFIG = "ingest.toml"
MODES = ("ours", "reader", "reader-search", "durability")


class Span:
    """The in-process part of a pass: wall seconds, and CPU seconds of the calling (main)
    thread, of the process's other threads, and of the child processes waited for (workers)."""

    def __enter__(self) -> Span:
        self._cpu = _cpu_now()
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds = time.perf_counter() - self._started
        now = _cpu_now()
        self.cpu = {key: now[key] - self._cpu[key] for key in now}

    def figures(self) -> dict[str, float]:
        return {
            "seconds": self.seconds,
            "cpu_main_thread_s": round(self.cpu["main_thread"], 3),
            "cpu_other_threads_s": round(self.cpu["process"] - self.cpu["main_thread"], 3),
            "cpu_workers_s": round(self.cpu["workers"], 3),
        }


def _cpu_now() -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "main_thread": time.thread_time(),
        "process": own.ru_utime + own.ru_stime,
        "workers": children.ru_utime + children.ru_stime,
    }


def command(
    tool: str, *, workdir: Path, urls: Path, workers: int, out: Path, query: str = ""
) -> list[str]:
    """The command line that runs one pass of ``tool`` (what ``main`` parses)."""
    line = [
        sys.executable,
        "-m",
        "bench.runner",
        tool,
        f"--workdir={workdir}",
        f"--urls={urls}",
        f"--workers={workers}",
        f"--out={out}",
    ]
    return [*line, f"--query={query}"] if query else line


def write_config(path: Path, urls: Sequence[str], in_flight: int) -> None:
    lines = [
        "[fetch]",
        f"concurrency = {in_flight}",
        f"per_host = {in_flight}",
        "allow_private_networks = true  # the farm is on loopback",
        "",
    ]
    for url in urls:
        lines += ["[[sources]]", f'url = "{url}"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def ours_url(workdir: Path) -> str:
    return f"sqlite:///{workdir / OURS_DB}"


def run_ours(workdir: Path, urls: Sequence[str], workers: int) -> dict[str, Any]:
    from ingest.cli.app import app  # noqa: PLC0415  (reader's process must not load our code)

    config = workdir / CONFIG
    if not config.exists():
        write_config(config, urls, workers)
    printed = io.StringIO()
    with Span() as span, contextlib.redirect_stdout(printed):
        code = app(
            ["--db", ours_url(workdir), "--config", str(config), "run", "--all"],
            standalone_mode=False,
        )
    return span.figures() | {"exit_code": code or 0, "printed": printed.getvalue()}


def run_reader(workdir: Path, urls: Sequence[str], workers: int) -> dict[str, Any]:
    from reader import make_reader  # noqa: PLC0415  (nor ours reader's)

    database = workdir / READER_DB
    fresh = not database.exists()
    new = modified = updated = not_modified = 0
    errors: list[str] = []
    with Span() as span:
        reader = make_reader(str(database))
        trust_ca(reader)
        if fresh:
            reader.enable_search()
            for url in urls:
                reader.add_feed(url, exist_ok=True)
        for result in reader.update_feeds_iter(scheduled=False, workers=workers):
            value = result.value
            if value is None:
                not_modified += 1
            elif isinstance(value, Exception):
                errors.append(f"{result.url}: {value}")
            else:
                updated += 1
                new += value.new
                modified += value.modified
        reader.update_search()
        reader.close()
    return span.figures() | {
        "exit_code": 0,
        "updated": updated,
        "not_modified": not_modified,
        "new": new,
        "modified": modified,
        "errors": len(errors),
        "first_errors": errors[:3],
    }


def trust_ca(reader: Any) -> None:
    """Make reader's HTTP session trust the CA ``REQUESTS_CA_BUNDLE`` names, if any.

    reader sends prepared requests through its session, which skips the environment
    requests would otherwise read, so the CA goes on the session itself, after the lazy
    set-up that mounts the HTTP retriever (reader's documented way to change retrievers).
    """
    authority = os.environ.get("REQUESTS_CA_BUNDLE")
    if authority:
        reader._parser.do_lazy_init()
        reader._parser.get_retriever("https://farm.invalid/").session.verify = authority


def run_reader_search(workdir: Path, query: str) -> dict[str, Any]:
    from reader import make_reader  # noqa: PLC0415

    with Span() as span:
        reader = make_reader(str(workdir / READER_DB))
        hits = list(reader.search_entries(query, limit=20))
        reader.close()
    return span.figures() | {"exit_code": 0, "hits": len(hits)}


def durability(tool: str, workdir: Path) -> dict[str, str]:
    """The journal mode and ``synchronous`` level of the tool's own SQLite connection."""
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    if tool == "ours":
        from sqlalchemy import text  # noqa: PLC0415

        from storage.engine import open_database  # noqa: PLC0415

        database = open_database(ours_url(workdir))
        try:
            with database.read() as conn:
                mode = conn.execute(text("PRAGMA journal_mode")).scalar()
                level = conn.execute(text("PRAGMA synchronous")).scalar()
        finally:
            database.close()
    else:
        from reader import make_reader  # noqa: PLC0415

        reader = make_reader(str(workdir / READER_DB))
        try:
            storage: Any = reader._storage
            connection = storage.get_db()  # its own connection, as it set it up
            mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
            level = connection.execute("PRAGMA synchronous").fetchone()[0]
        finally:
            reader.close()
    return {
        "journal_mode": str(mode).upper(),
        "synchronous": names.get(int(str(level)), str(level)),
    }


def count_ours(workdir: Path) -> dict[str, Any]:
    """What our store holds: posts, sightings, sources by last status, failing sources."""
    with contextlib.closing(_read_only(workdir / OURS_DB)) as conn:
        statuses = dict(conn.execute("SELECT last_status, count(*) FROM sources GROUP BY 1"))
        errors = [
            f"{url}: {error}"
            for url, error in conn.execute("SELECT url, last_error FROM sources WHERE error_count")
        ]
        return {
            "entries": conn.execute("SELECT count(*) FROM posts").fetchone()[0],
            "sightings": conn.execute("SELECT count(*) FROM sightings").fetchone()[0],
            "feeds": conn.execute("SELECT count(*) FROM sources").fetchone()[0],
            "statuses": {str(key): value for key, value in statuses.items()},
            "failing": errors,
        }


def count_reader(workdir: Path) -> dict[str, Any]:
    """What reader's store holds: entries, feeds, and feeds whose last update failed."""
    with contextlib.closing(_read_only(workdir / READER_DB)) as conn:
        errors = [
            f"{url}: {error}"
            for url, error in conn.execute(
                "SELECT url, last_exception FROM feeds WHERE last_exception NOT NULL"
            )
        ]
        return {
            "entries": conn.execute("SELECT count(*) FROM entries").fetchone()[0],
            "feeds": conn.execute("SELECT count(*) FROM feeds").fetchone()[0],
            "failing": errors,
        }


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One benchmark pass of one tool.")
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("tool", nargs="?", choices=("ours", "reader"), help="durability: whose")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--urls", type=Path)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--query", default="")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.mode == "durability":
        print(json.dumps(durability(args.tool or "ours", args.workdir)))
        return
    if args.mode == "reader-search":
        result = run_reader_search(args.workdir, args.query)
    else:
        urls = args.urls.read_text(encoding="utf-8").split()
        run = run_ours if args.mode == "ours" else run_reader
        result = run(args.workdir, urls, args.workers)
    result["finished_at"] = time.time()
    result["pid"] = os.getpid()  # bench.profiling picks this process out of its profile
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
