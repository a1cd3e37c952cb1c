"""Throughput of 1, 2, 4 ``ingest serve`` replicas sharing one PostgreSQL store.

``python -m bench.replicas [--feeds 2000] [--items 20] [--replicas 1,2,4] [--rounds 3]
[--pg postgresql+psycopg://postgres@127.0.0.1:5432/test] [--json FILE]``

Each attempt, on the loopback farm (``bench.farm``) and a fresh schema of the database:

1. start N ``ingest serve`` processes at once, as N containers would start (start-up,
   migrating an empty store and applying the config's sources included), each with
   ``[fetch] concurrency = --workers``, the default ``[serve] tick`` (15 s: a replica with a
   backlog claims more as its slots free up, not per tick; between ticks it indexes search)
   and an interval of a day, so every source is due exactly once;
2. time until the store shows every source checked, polling it every 0.1 s;
3. check at the farm that it answered exactly one 200 per feed (no source fetched twice by two
   replicas, none skipped) and in the store that it holds feeds x items posts; then SIGTERM
   every replica and require exit 0.

The peer, lemon24/reader (one process, ``workers`` threads, its own SQLite file: it has no
shared store), makes the same cold pass over the same farm in every round (``bench.runner``),
so each figure has a ratio taken on the machine as it was then. Rounds alternate the order of
the replica counts. Medians and spreads (min-max) are printed and written to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from bench.farm import Farm, stats_delta
from bench.measure import clean_env, run_checked
from bench.runner import command as runner_command

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
INGEST = str(Path(sys.executable).parent / "ingest")


@contextmanager
def fresh_schema(admin_url: str, prefix: str = "bench") -> Iterator[str]:
    """A store URL on an empty schema of its own in the database ``admin_url`` names, dropped
    afterwards (the test suite's PostgreSQL stores are made the same way)."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{admin_url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def write_config(path: Path, urls: Sequence[str], workers: int) -> None:
    lines = [
        "[defaults]",
        'interval = "1d"',
        "[fetch]",
        f"concurrency = {workers}",
        "allow_private_networks = true",
        "[log]",
        'level = "warning"',
    ]
    for url in urls:
        lines += ["[[sources]]", f'url = "{url}"']
    path.write_text("\n".join(lines) + "\n")


def checked(engine: Any) -> int:
    try:
        with engine.connect() as conn:
            query = "SELECT count(*) FROM sources WHERE last_checked_at IS NOT NULL"
            return int(conn.execute(text(query)).scalar_one())
    except ProgrammingError:  # the replicas are still creating the schema
        return 0


def replicas_pass(
    farm: Farm, db: str, config: Path, count: int, workdir: Path, *, timeout_s: float
) -> dict[str, Any]:
    """One cold pass by ``count`` replicas started together; its figures."""
    engine = create_engine(db)
    before = farm.stats()
    logs = [(workdir / f"replica-{i}.log").open("w") for i in range(count)]
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [INGEST, "--db", db, "--config", str(config), "serve"],
            env=clean_env({"INGEST_SERVE_PORT": str(18080 + i)}),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for i, log in enumerate(logs)
    ]
    try:
        while checked(engine) < farm.feeds:
            if time.perf_counter() - started > timeout_s:
                raise RuntimeError(f"{count} replicas did not finish in {timeout_s:.0f} s")
            if any(p.poll() is not None for p in processes):
                raise RuntimeError(f"a replica exited early; see {workdir}/replica-*.log")
            time.sleep(0.1)
        seconds = time.perf_counter() - started
        time.sleep(2)  # a source fetched twice by two replicas would show by now
        delta = stats_delta(before, farm.stats())
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(60) for process in processes]
        for log in logs:
            log.close()
    with engine.connect() as conn:
        posts = int(conn.execute(text("SELECT count(*) FROM posts")).scalar_one())
    engine.dispose()
    problems = []
    if delta.get("200") != farm.feeds or delta.get("requests") != farm.feeds:
        problems.append(f"farm saw {delta} for {farm.feeds} feeds")
    if posts != farm.feeds * farm.items:
        problems.append(f"{posts} posts stored, {farm.feeds * farm.items} expected")
    if any(codes):
        problems.append(f"exit codes {codes}")
    if problems:
        raise RuntimeError("; ".join(problems))
    return {"seconds": seconds, "entries_per_s": farm.feeds * farm.items / seconds}


def reader_pass(farm: Farm, workdir: Path, workers: int) -> dict[str, Any]:
    urls = workdir / "urls.txt"
    urls.write_text("\n".join(farm.urls()) + "\n")
    out = workdir / "reader.json"
    run_checked(
        runner_command("reader", workdir=workdir, urls=urls, workers=workers, out=out),
        env=clean_env(),
    )
    result: dict[str, Any] = json.loads(out.read_text())
    seconds = float(result["seconds"])
    return {"seconds": seconds, "entries_per_s": farm.feeds * farm.items / seconds}


def spread(values: Sequence[float]) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--replicas", default="1,2,4")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=32, help="[fetch] concurrency; reader's")
    parser.add_argument("--pg", default=PG, help="admin URL of the PostgreSQL database")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.replicas.split(",")]
    results: dict[str, list[dict[str, Any]]] = {"reader": [], **{str(n): [] for n in counts}}
    with Farm(args.feeds, args.items) as farm, tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch) / "ingest.toml"
        write_config(config, farm.urls(), args.workers)
        for round_ in range(args.rounds):
            order = counts if round_ % 2 == 0 else counts[::-1]
            for count in order:
                with fresh_schema(args.pg) as db:
                    figures = replicas_pass(
                        farm, db, config, count, Path(scratch), timeout_s=args.timeout
                    )
                results[str(count)].append(figures)
                print(f"round {round_ + 1}: {count} replica(s): {figures['seconds']:.1f} s")
            with tempfile.TemporaryDirectory() as workdir:
                figures = reader_pass(farm, Path(workdir), args.workers)
            results["reader"].append(figures)
            print(f"round {round_ + 1}: reader: {figures['seconds']:.1f} s")
    reader_rates = [r["entries_per_s"] for r in results["reader"]]
    summary: dict[str, dict[str, Any]] = {"reader": spread(reader_rates)}
    print(f"\n{args.feeds} feeds x {args.items} items, {os.cpu_count()} CPUs, {args.rounds} rounds")
    print(f"{'':<12} {'entries/s median (min-max)':<30} ratio to reader (same round)")
    print(f"{'reader':<12} {_cell(summary['reader']):<30} 1.00x")
    for count in counts:
        rates = [r["entries_per_s"] for r in results[str(count)]]
        ratios = [ours / peer for ours, peer in zip(rates, reader_rates, strict=True)]
        summary[str(count)] = {**spread(rates), "ratio": spread(ratios)}
        label = f"{count} replica" + ("s" if count > 1 else "")
        ratio = summary[str(count)]["ratio"]
        print(f"{label:<12} {_cell(summary[str(count)]):<30} {ratio['median']:.2f}x")
    if args.json:
        document = {"feeds": args.feeds, "items": args.items, "raw": results, "summary": summary}
        args.json.write_text(json.dumps(document, indent=1) + "\n")


def _cell(figures: dict[str, Any]) -> str:
    return f"{figures['median']:,.0f} ({figures['min']:,.0f}-{figures['max']:,.0f})"


if __name__ == "__main__":
    main()
