"""One pass of one tool over the farm's feeds, in a process of its own.

``python -m bench.runner ours|reader --workdir DIR --urls FILE --workers N --out FILE``

- ``ours``: ``ingest --db sqlite:///DIR/ours.db --config DIR/ingest.toml run --all``, called
  in-process through the real CLI (typer app), with a config listing every URL and
  ``[fetch] concurrency = N``, ``allow_private_networks = true`` (the farm is on loopback). The
  timed part is the whole command: settings, store opening, applying the config's sources,
  the pass. The log (one line per source, as a user gets it) goes to this process's stderr.
- ``reader``: ``make_reader(DIR/reader.sqlite)``, ``add_feed`` for every URL when the store is
  new, then ``update_feeds_iter(scheduled=False, workers=N)`` (all feeds, like ``--all``). The
  timed part is all of that.

Afterwards it counts what the store holds (independently of the tool's own report) and writes
one JSON object to ``--out``: seconds, the tool's own counts, the store's counts, the CPU
seconds of the main thread (ours: the event loop), of the other threads (ours: store writer,
resolver; reader: its fetching/parsing workers) and of worker processes (ours: parsing), and
all the CPU seconds this process and its children used (start-up included), and
``ru_maxrss`` of this process and of its largest waited-for child. The latter two are upper
bounds only: Linux carries a forked child's RSS over its ``exec``, so a small process launched
by a large one reports the launcher's size; the sampled tree figures are the ones to read.
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


class Span:
    """The timed part of a pass: wall seconds, and CPU seconds of the calling (main) thread,
    of the process's other threads, and of the child processes waited for (workers)."""

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


def command(tool: str, *, workdir: Path, urls: Path, workers: int, out: Path) -> list[str]:
    """The command line that runs one pass of ``tool`` (what ``main`` parses)."""
    return [
        sys.executable,
        "-m",
        "bench.runner",
        tool,
        f"--workdir={workdir}",
        f"--urls={urls}",
        f"--workers={workers}",
        f"--out={out}",
    ]


def write_config(path: Path, urls: Sequence[str], concurrency: int) -> None:
    lines = [
        "[fetch]",
        f"concurrency = {concurrency}",
        "allow_private_networks = true  # the farm is on loopback",
        "",
    ]
    for url in urls:
        lines += ["[[sources]]", f'url = "{url}"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_ours(workdir: Path, urls: Sequence[str], workers: int) -> dict[str, Any]:
    from ingest.cli.app import app  # noqa: PLC0415  (reader's process must not load our code)

    config = workdir / CONFIG
    if not config.exists():
        write_config(config, urls, workers)
    database = workdir / OURS_DB
    printed = io.StringIO()
    with Span() as span, contextlib.redirect_stdout(printed):
        code = app(
            ["--db", f"sqlite:///{database}", "--config", str(config), "run", "--all"],
            standalone_mode=False,
        )
    return (
        span.figures()
        | {"exit_code": code or 0, "printed": printed.getvalue()}
        | (count_ours(database))
    )


def count_ours(database: Path) -> dict[str, Any]:
    """What our store holds: posts, sightings, and sources by last status."""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        statuses = dict(conn.execute("SELECT last_status, count(*) FROM sources GROUP BY 1"))
        errors = [
            row[0] for row in conn.execute("SELECT last_error FROM sources WHERE error_count")
        ]
        return {
            "entries": conn.execute("SELECT count(*) FROM posts").fetchone()[0],
            "sightings": conn.execute("SELECT count(*) FROM sightings").fetchone()[0],
            "feeds": conn.execute("SELECT count(*) FROM sources").fetchone()[0],
            "statuses": {str(key): value for key, value in statuses.items()},
            "errors": len(errors),
            "first_errors": errors[:3],
        }


def run_reader(workdir: Path, urls: Sequence[str], workers: int) -> dict[str, Any]:
    from reader import make_reader  # noqa: PLC0415  (nor ours reader's)

    database = workdir / READER_DB
    fresh = not database.exists()
    new = modified = updated = not_modified = 0
    errors: list[str] = []
    with Span() as span:
        reader = make_reader(str(database))
        if fresh:
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
    counts = reader.get_entry_counts()
    feeds = reader.get_feed_counts()
    reader.close()
    return span.figures() | {
        "exit_code": 0,
        "updated": updated,
        "not_modified": not_modified,
        "new": new,
        "modified": modified,
        "entries": counts.total,
        "feeds": feeds.total,
        "broken": feeds.broken,
        "errors": len(errors),
        "first_errors": errors[:3],
    }


def peak_rusage_mb() -> dict[str, float]:
    """ru_maxrss (KiB on Linux) of this process and of the largest waited-for child."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"maxrss_self_mb": own / 1024, "maxrss_children_mb": children / 1024}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One benchmark pass of one tool.")
    parser.add_argument("tool", choices=("ours", "reader"))
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--urls", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    urls = args.urls.read_text(encoding="utf-8").split()
    run = run_ours if args.tool == "ours" else run_reader
    result = run(args.workdir, urls, args.workers) | peak_rusage_mb() | {"pid": os.getpid()}
    everything = _cpu_now()
    result["cpu_all_s"] = round(everything["process"] + everything["workers"], 3)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
