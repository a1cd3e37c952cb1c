"""feed-ingest against lemon24/reader on one loopback feed farm: the benchmark's entry point.

``python bench/compare.py [--feeds 2000] [--items 20] [--json FILE]`` (or ``python -m
bench.compare``), from a checkout with ``pip install -e '.[bench]'``.

In one run:

1. start the farm (``bench.farm``): ``--feeds`` RSS feeds of ``--items`` items of ~3 KB, with
   ETags, spread over 64 loopback addresses;
2. for each tool, on a fresh store: a cold pass, then a second and a third pass (all 304), each
   in its own process (``bench.runner``) whose process tree's memory is sampled
   (``bench.measure``). Ours is ``ingest run --all`` with ``[fetch] concurrency = --workers``;
   reader is ``update_feeds(workers=--reader-workers)``;
3. check every pass did what it should: the farm answered 200 to every feed on the cold pass
   and 304 to every feed after it, no feed failed, and both stores hold feeds x items entries.
   A failed check is printed and makes the exit code 1: a benchmark that silently measures
   failures is worthless;
4. per-stage entries/s on the farm's documents (``bench.stages``, in-process, one core);
5. search latency at ``--search-posts`` posts (``bench.search``; ``0`` skips it);
6. print the machine, the table (figure, ours, reader, ratio, target, verdict) and the stages,
   and write everything to ``--json`` for ``bench.report`` (``docs/performance.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from bench.corpus import SEED
from bench.farm import Farm, stats_delta
from bench.measure import clean_env, machine_busy_s, own_cpu_s, run_checked, run_sampled
from bench.runner import command as runner_command
from bench.search import CACHE as SEARCH_CACHE
from bench.search import POSTS as SEARCH_POSTS

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
TOOLS = ("ours", "reader")
PASSES = ("cold", "304", "304")
COLD_RATIO = 3.0
ALL_304_RATIO = 1.6
ALL_304_SECONDS = 10.0
TARGET_FEEDS = 10_000
RSS_LIMIT_MB = 150.0
FLAT_TOLERANCE = 0.10
SEARCH_P50_MS = 50.0
CPU_PARTS = ("main_thread", "other_threads", "workers")
CPUS = os.cpu_count() or 1
NOISY_LOAD = 0.05
"""Share of the machine's CPU used by others during a pass above which its figures are noisy."""
PACKAGES = ("feedparser", "httpx", "nh3", "SQLAlchemy", "sqlmodel", "reader", "requests")


@dataclass(frozen=True, slots=True)
class PassResult:
    """One pass of one tool: what the runner reported, what the farm saw, what was sampled."""

    tool: str
    number: int
    kind: str
    seconds: float
    wall_s: float
    peak_rss_mb: float
    peak_pss_mb: float
    peak_processes: int
    runner: dict[str, Any]
    farm: dict[str, Any]
    other_load: float
    """Share of the machine's CPU that processes outside the benchmark used during the pass."""


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table."""

    figure: str
    ours: str
    reader: str
    ratio: str
    target: str
    verdict: str


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:  # noqa: PTH123
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
    }


def versions() -> dict[str, str]:
    found = {"feed-ingest": metadata.version("feed-ingest")}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    done = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    found["commit"] = done.stdout.strip() or "unknown"
    return found


def machine_load(seconds: float = 1.0) -> float:
    """The share of the machine's CPU in use over the next ``seconds``."""
    busy = machine_busy_s()
    time.sleep(seconds)
    return (machine_busy_s() - busy) / (seconds * CPUS)


def wait_for_quiet(threshold: float, patience_s: float) -> float:
    """Wait (at most ``patience_s``) until other work uses under ``threshold`` of the CPUs."""
    if patience_s <= 0:
        return 0.0
    deadline = time.monotonic() + patience_s
    load = machine_load()
    while load > threshold and time.monotonic() < deadline:
        load = machine_load(5.0)
    return load


@dataclass(frozen=True, slots=True)
class Plan:
    """How each tool's passes run: against which farm, where, how hard, how patiently."""

    farm: Farm
    workdir: Path
    urls_file: Path
    timeout_s: float
    retries: int
    quiet: float
    patience_s: float


def run_tool(tool: str, workers: int, plan: Plan) -> list[PassResult]:
    """The cold, second and third pass of ``tool`` on a fresh store.

    A pass during which other work used more than ``NOISY_LOAD`` of the machine is run again
    (a cold one on a fresh store), up to ``plan.retries`` times, and the least disturbed
    attempt kept; before each pass the run waits for the machine to be quiet.
    """
    folder = plan.workdir / tool
    results: list[PassResult] = []
    for number, kind in enumerate(PASSES, start=1):
        attempts: list[PassResult] = []
        while len(attempts) <= plan.retries:
            if kind == "cold":
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True)
            wait_for_quiet(plan.quiet, plan.patience_s)
            attempts.append(
                run_pass(tool, number, kind=kind, workers=workers, folder=folder, plan=plan)
            )
            if attempts[-1].other_load <= NOISY_LOAD:
                break
            if len(attempts) <= plan.retries:
                print(f"{'':>26}other work used the machine: running this pass again")
        results.append(min(attempts, key=lambda attempt: attempt.other_load))
    return results


def run_pass(
    tool: str, number: int, *, kind: str, workers: int, folder: Path, plan: Plan
) -> PassResult:
    out = folder / f"pass{number}.json"
    out.unlink(missing_ok=True)
    command = runner_command(tool, workdir=folder, urls=plan.urls_file, workers=workers, out=out)
    before = plan.farm.stats()
    busy, mine = machine_busy_s(), own_cpu_s()
    with (folder / f"pass{number}.log").open("w", encoding="utf-8") as log:
        sampled = run_sampled(
            command, env=clean_env(), stdout=log, stderr=log, cwd=ROOT, timeout_s=plan.timeout_s
        )
    busy, mine = machine_busy_s() - busy, own_cpu_s() - mine
    farm_seen = stats_delta(before, plan.farm.stats())
    if sampled.returncode != 0 or not out.exists():
        raise RuntimeError(
            f"{tool} pass {number} failed (exit code {sampled.returncode}); "
            f"see {folder / f'pass{number}.log'}"
        )
    runner = json.loads(out.read_text(encoding="utf-8"))
    other_s = max(busy - mine - runner["cpu_all_s"] - farm_seen.get("cpu_s", 0.0), 0.0)
    result = PassResult(
        tool=tool,
        number=number,
        kind=kind,
        seconds=runner["seconds"],
        wall_s=sampled.wall_s,
        peak_rss_mb=sampled.peak_rss_mb,
        peak_pss_mb=sampled.peak_pss_mb,
        peak_processes=sampled.peak_processes,
        runner=runner,
        farm=farm_seen,
        other_load=other_s / (sampled.wall_s * CPUS),
    )
    cpu = ", ".join(f"{part} {runner[f'cpu_{part}_s']:.1f}" for part in CPU_PARTS)
    print(
        f"  {tool:<6} pass {number} ({kind:>4}): {result.seconds:7.2f} s; "
        f"peak RSS {result.peak_rss_mb:5.1f} MB, PSS {result.peak_pss_mb:5.1f} MB "
        f"({result.peak_processes} processes); CPU s: {cpu}\n{'':>26}farm: "
        f"{farm_seen.get('200', 0):g}x200 {farm_seen.get('304', 0):g}x304 over "
        f"{farm_seen.get('connections', 0):g} connections, farm CPU "
        f"{farm_seen.get('cpu_s', 0):.1f} s; other load on the machine "
        f"{result.other_load:.0%}" + (" (NOISY)" if result.other_load > NOISY_LOAD else ""),
        flush=True,
    )
    return result


def check(result: PassResult, feeds: int, entries: int) -> list[str]:
    """What is wrong with a pass; empty when it did exactly what it should."""
    problems: list[str] = []
    runner = result.runner
    name = f"{result.tool} pass {result.number}"

    def expect(what: str, got: object, wanted: object) -> None:
        if got != wanted:
            problems.append(f"{name}: {what} is {got!r}, expected {wanted!r}")

    cold = result.kind == "cold"
    expect("exit code", runner.get("exit_code"), 0)
    expect("failed feeds", runner.get("errors"), 0)
    expect("stored entries", runner.get("entries"), entries)
    expect("feeds in the store", runner.get("feeds"), feeds)
    expect("farm 200 responses", result.farm.get("200", 0), feeds if cold else 0)
    expect("farm 304 responses", result.farm.get("304", 0), 0 if cold else feeds)
    expect("farm 404 responses", result.farm.get("404", 0), 0)
    if result.tool == "ours":
        expect(
            "sources by status", runner.get("statuses"), {"ok" if cold else "not_modified": feeds}
        )
    else:
        expect("new entries", runner.get("new"), entries if cold else 0)
        expect("feeds not modified", runner.get("not_modified"), 0 if cold else feeds)
    if runner.get("first_errors"):
        problems.append(f"{name}: first errors: {runner['first_errors']}")
    return problems


def figures(results: Sequence[PassResult], feeds: int, entries: int) -> dict[str, Any]:
    cold, *warm = results
    warm_s = statistics.mean(r.seconds for r in warm)
    return {
        "cold_s": cold.seconds,
        "cold_entries_per_s": entries / cold.seconds,
        "all304_s": warm_s,
        "all304_feeds_per_s": feeds / warm_s,
        "peak_rss_mb": [r.peak_rss_mb for r in results],
        "peak_rss_max_mb": max(r.peak_rss_mb for r in results),
        "peak_pss_mb": [r.peak_pss_mb for r in results],
        "peak_pss_cold_mb": cold.peak_pss_mb,
        "maxrss_main_mb": [r.runner["maxrss_self_mb"] for r in results],
        "maxrss_worker_mb": [r.runner["maxrss_children_mb"] for r in results],
        "process_wall_s": [r.wall_s for r in results],
        "farm_cpu_s": [r.farm.get("cpu_s", 0.0) for r in results],
        "farm_connections": [r.farm.get("connections", 0) for r in results],
        "other_load": [round(r.other_load, 3) for r in results],
        "cpu_s": [{key: r.runner[f"cpu_{key}_s"] for key in CPU_PARTS} for r in results],
    }


def _num(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _verdict(passed: bool | None, *, exact_scale: bool = True) -> str:
    if passed is None:
        return "—"
    return ("PASS" if passed else "FAIL") + ("" if exact_scale else "*")


Pair = tuple[float | None, float | None]


def _row(
    figure: str, pair: Pair, digits: int, target: str, passed: bool | None, *, exact: bool = True
) -> Row:
    ours, reader = pair
    ratio = "—" if ours is None or not reader else f"{ours / reader:.2f}×"
    return Row(
        figure,
        _num(ours, digits),
        _num(reader, digits),
        ratio,
        target,
        _verdict(passed, exact_scale=exact) if target else "",
    )


def _at_least(pair: Pair, factor: float) -> bool | None:
    ours, reader = pair
    return None if ours is None or not reader else ours / reader >= factor


def _series(side: dict[str, Any] | None) -> str:
    return "—" if side is None else " / ".join(f"{value:.1f}" for value in side["peak_rss_mb"])


def _flat(side: dict[str, Any] | None) -> bool | None:
    """The third pass's peak within ``FLAT_TOLERANCE`` of the second's."""
    if side is None:
        return None
    _, second, third = side["peak_rss_mb"]
    return bool(third <= second * (1 + FLAT_TOLERANCE))


def table(
    ours: dict[str, Any] | None,
    reader: dict[str, Any] | None,
    search: dict[str, Any],
    feeds: int,
) -> list[Row]:
    def pair(key: str) -> Pair:
        return (
            None if ours is None else float(ours[key]),
            None if reader is None else float(reader[key]),
        )

    exact = feeds == TARGET_FEEDS
    seconds, peak = pair("all304_s"), pair("peak_rss_max_mb")
    rows = [
        _row(
            "cold pass, entries/s",
            pair("cold_entries_per_s"),
            0,
            f"≥ {COLD_RATIO:g}× reader",
            _at_least(pair("cold_entries_per_s"), COLD_RATIO),
        ),
        _row(
            "all-304 pass, feeds/s",
            pair("all304_feeds_per_s"),
            0,
            f"≥ {ALL_304_RATIO:g}× reader",
            _at_least(pair("all304_feeds_per_s"), ALL_304_RATIO),
        ),
        _row(
            "all-304 pass, s",
            seconds,
            2,
            f"< {ALL_304_SECONDS:g} s at {TARGET_FEEDS:,} feeds",
            None if seconds[0] is None else seconds[0] * TARGET_FEEDS / feeds < ALL_304_SECONDS,
            exact=exact,
        ),
        _row(
            "peak RSS of any pass, MB",
            peak,
            1,
            f"< {RSS_LIMIT_MB:g} MB at {TARGET_FEEDS:,} feeds",
            None if peak[0] is None else peak[0] < RSS_LIMIT_MB,
            exact=exact,
        ),
        Row(
            "peak RSS cold / 2nd / 3rd, MB",
            _series(ours),
            _series(reader),
            "",
            f"flat: 3rd ≤ 2nd + {FLAT_TOLERANCE:.0%}",
            _verdict(_flat(ours)),
        ),
        _row("peak PSS of the cold pass, MB", pair("peak_pss_cold_mb"), 1, "", None),
    ]
    if "p50_ms" in search:
        exact = search["posts"] == SEARCH_POSTS
        rows += [
            Row(
                f"search p50, ms ({search['posts']:,} posts)",
                _num(search["p50_ms"], 1),
                "",
                "",
                f"< {SEARCH_P50_MS:g} ms at 1M posts",
                _verdict(search["p50_ms"] < SEARCH_P50_MS, exact_scale=exact),
            ),
            Row("search p95, ms", _num(search["p95_ms"], 1), "", "", "", ""),
        ]
    return rows


def print_table(rows: Sequence[Row]) -> None:
    headers = Row("figure", "ours", "reader", "ours/reader", "target", "verdict")
    widths = [max(len(getattr(r, f)) for r in (headers, *rows)) for f in Row.__slots__]
    for index, row in enumerate((headers, *rows)):
        cells = [getattr(row, f) for f in Row.__slots__]
        print(
            "  ".join(
                cell.ljust(width) if column in (0, 4) else cell.rjust(width)
                for column, (cell, width) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()
        )
        if index == 0:
            print("  ".join("-" * width for width in widths))


def run_stages(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    out = workdir / "stages.json"
    run_checked(
        [
            sys.executable,
            "-m",
            "bench.stages",
            f"--feeds={min(args.stage_feeds, args.feeds)}",
            f"--items={args.items}",
            f"--rounds={args.stage_rounds}",
            f"--seed={args.seed}",
            f"--json={out}",
        ],
        env=clean_env(),
    )
    stages: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return stages


def run_search(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    if args.search_posts <= 0:
        return {"skipped": "search benchmark not asked for (--search-posts 0)"}
    out = workdir / "search.json"
    run_checked(
        [
            sys.executable,
            "-m",
            "bench.search",
            f"--posts={args.search_posts}",
            f"--rounds={args.search_rounds}",
            f"--seed={args.seed}",
            f"--cache={args.search_cache}",
            f"--json={out}",
        ],
        env=clean_env(),
        timeout_s=4 * 3600,
    )
    search: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return search


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark feed-ingest against reader on a loopback feed farm."
    )
    parser.add_argument("--feeds", type=int, default=2000, help="feeds in the farm")
    parser.add_argument("--items", type=int, default=20, help="items per feed")
    parser.add_argument("--seed", type=int, default=SEED, help="content seed")
    parser.add_argument("--workers", type=int, default=32, help="our [fetch] concurrency")
    parser.add_argument("--reader-workers", type=int, default=32, help="reader's workers")
    parser.add_argument("--tools", default=",".join(TOOLS), help="ours,reader (default both)")
    parser.add_argument("--stage-feeds", type=int, default=50, help="documents for the stages")
    parser.add_argument("--stage-rounds", type=int, default=5)
    parser.add_argument("--search-posts", type=int, default=SEARCH_POSTS, help="0: no search")
    parser.add_argument("--search-rounds", type=int, default=10)
    parser.add_argument("--search-cache", type=Path, default=SEARCH_CACHE)
    parser.add_argument(
        "--retries", type=int, default=2, help="reruns of a pass other work disturbed"
    )
    parser.add_argument(
        "--quiet", type=float, default=0.10, help="machine load to wait for before each pass"
    )
    parser.add_argument("--patience", type=float, default=600, help="longest wait for quiet, s")
    parser.add_argument("--workdir", type=Path, help="stores and logs [bench/.cache/run-NxM]")
    parser.add_argument("--json", type=Path, help="results file [WORKDIR/results.json]")
    args = parser.parse_args(argv)
    args.tools = [tool for tool in args.tools.split(",") if tool]
    if set(args.tools) - set(TOOLS) or not args.tools:
        parser.error(f"--tools takes a comma-separated subset of {','.join(TOOLS)}")
    args.workdir = args.workdir or CACHE / f"run-{args.feeds}x{args.items}"
    args.json = args.json or args.workdir / "results.json"
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    feeds, items = args.feeds, args.items
    entries = feeds * items
    args.workdir.mkdir(parents=True, exist_ok=True)
    about = machine()
    print(
        f"machine: {about['cpus']} CPUs ({about['cpu_model']}), {about['memory_gib']} GiB, "
        f"Python {about['python']}, SQLite {about['sqlite']}"
    )
    print(f"scale: {feeds:,} feeds x {items} items = {entries:,} entries", flush=True)
    print(f"machine load before the run: {machine_load():.0%} of {CPUS} CPUs", flush=True)
    timeout_s = max(900.0, entries / 50)
    results: dict[str, list[PassResult]] = {}
    with Farm(feeds, items, seed=args.seed) as farm:
        print(f"farm: {farm.bytes / 2**20:,.1f} MiB of documents on port {farm.port}", flush=True)
        urls_file = args.workdir / "urls.txt"
        urls_file.write_text("\n".join(farm.urls()) + "\n", encoding="utf-8")
        plan = Plan(
            farm=farm,
            workdir=args.workdir,
            urls_file=urls_file,
            timeout_s=timeout_s,
            retries=args.retries,
            quiet=args.quiet,
            patience_s=args.patience,
        )
        for tool in args.tools:
            workers = args.workers if tool == "ours" else args.reader_workers
            results[tool] = run_tool(tool, workers, plan)
    problems = [p for runs in results.values() for r in runs for p in check(r, feeds, entries)]
    print("stages (in-process, one core) ...", flush=True)
    stages = run_stages(args, args.workdir)
    search = run_search(args, args.workdir)
    computed = {tool: figures(runs, feeds, entries) for tool, runs in results.items()}
    rows = table(computed.get("ours"), computed.get("reader"), search, feeds)

    print()
    print_table(rows)
    if any(row.verdict.endswith("*") for row in rows):
        print("* indicative: the target is set at another scale")
    print()
    rates = stages["entries_per_s"]
    print(f"stages over {stages['entries']:,} entries ({stages['documents']} documents), one core:")
    for stage, rate in rates.items():
        print(f"  {stage:<16} {rate:>10,.0f} entries/s")
    print(f"  bottleneck: {min(('parse', 'normalize', 'store'), key=lambda s: rates[s])}")
    if "skipped" in search:
        print(search["skipped"])
    farm_cpu = sum(r.farm.get("cpu_s", 0.0) for runs in results.values() for r in runs)
    pass_s = sum(r.seconds for runs in results.values() for r in runs)
    print(f"farm CPU: {farm_cpu:.1f} s over {pass_s:.1f} s of passes ({farm_cpu / pass_s:.0%})")
    noisy = [
        f"{r.tool} {r.number}"
        for runs in results.values()
        for r in runs
        if r.other_load > NOISY_LOAD
    ]
    if noisy:
        print(f"warning: other work used the machine during passes {', '.join(noisy)}")

    document = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": about,
        "versions": versions(),
        "scale": {
            "feeds": feeds,
            "items": items,
            "entries": entries,
            "seed": args.seed,
            "document_bytes": farm.bytes,
            "ours_concurrency": args.workers,
            "reader_workers": args.reader_workers,
        },
        "figures": computed,
        "table": [asdict(row) for row in rows],
        "stages": stages,
        "search": search,
        "passes": {tool: [asdict(r) for r in runs] for tool, runs in results.items()},
        "checks": {"ok": not problems, "problems": problems},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"results: {args.json}")
    for problem in problems:
        print(f"CHECK FAILED: {problem}")
    if problems:
        return 1
    print(f"checks: every pass of {', '.join(results)} did what it should")
    return 0


if __name__ == "__main__":
    sys.exit(main())
