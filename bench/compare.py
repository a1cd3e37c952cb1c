"""feed-ingest against lemon24/reader on a loopback feed farm: the benchmark's entry point.

``python bench/compare.py [--feeds 500] [--items 20] [--runs 5] [--topology NAME]... [--full]
[--json FILE]`` (or ``python -m bench.compare``), from a checkout with ``pip install -e
'.[bench]'``.

For each setting (a farm topology of ``bench.topology``, ``one-host`` unless ``--topology`` or
``--full`` says otherwise, and the same topology again pinned to one core with ``taskset -c
0``):

1. start the farm: ``--feeds`` RSS feeds of ``--items`` items of ~3 KB, with ETags;
2. ``--runs`` runs, alternating the tools (ours, reader, ours, reader, ...); each run is one
   sequence of ``bench.passes``: cold pass, first search, all-304 pass, steady pass (a tenth of
   the feeds changed), every one a whole process, with ``--in-flight`` requests at once for
   both tools (ours ``[fetch] concurrency`` and ``per_host``, reader ``workers``);
3. every attempt is kept, checked (what the farm served, what the store holds; a failed check
   is printed and makes the exit code 1) and written to ``--json``; the figures are medians
   with their spread (min-max, IQR), and each ratio is the median of the runs' paired ratios;
4. each figure is printed with its target (``TARGETS`` below) and a verdict, met or NOT met;
   a target stated for another scale or setting is marked ``*`` (indicative).

Then the durability each store runs with (read from each tool's own connection), the
per-stage entries/s (``bench.stages``) and optionally search latency at scale (``bench.search``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from bench.corpus import SEED
from bench.measure import clean_env, run_checked
from bench.passes import PASSES, Attempt, Plan, machine_load, run_sequence, wait_for_quiet
from bench.search import CACHE as SEARCH_CACHE
from bench.topology import DEFAULT, TOPOLOGIES, start_farm

# Targets. "one host, 8 in flight, whole processes" is the setting the ratios are stated for.
TARGET_SCALES = (500, 10_000)
"""Feed counts the ratio targets are stated at."""
COLD_RATIO = 4.0
"""Cold pass, whole processes, one host: reader's seconds / ours at least this."""
ALL_304_RATIO = 2.0
"""All-304 pass, whole processes, one host: reader's seconds / ours at least this."""
PINNED_COLD_RATIO = 3.0
"""Cold pass pinned to one core, one host: reader's seconds / ours at least this."""
ALL_304_SECONDS = 5.0
ALL_304_FEEDS = 10_000
ALL_304_TOPOLOGY = "64-hosts"
"""Our all-304 pass over ``ALL_304_FEEDS`` feeds on this farm: under ``ALL_304_SECONDS``."""
RSS_LIMIT_MB = 150.0
RSS_FEEDS = 10_000
"""Peak RSS summed over every process of ours, at ``RSS_FEEDS`` feeds: under this."""
FIRST_SEARCH_S = 1.0
"""``ingest entries search WORD`` right after the cold pass, whole process: under this."""
RATIO_TOPOLOGY = "one-host"

IN_FLIGHT = 8
RUNS = 5
SEARCH_WORD = "satellite"
ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
TOOLS = ("ours", "reader")
PACKAGES = ("feedparser", "httpx", "nh3", "SQLAlchemy", "sqlmodel", "reader", "requests")
KINDS = ("cold", "search", "304", "steady")


@dataclass(frozen=True, slots=True)
class Setting:
    """One farm topology, free or pinned to one core."""

    topology: str
    pinned: bool

    @property
    def name(self) -> str:
        return self.topology + (", pinned to one core" if self.pinned else "")


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


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min, max and the interquartile range of a figure over the runs."""
    ordered = sorted(values)
    q1, q3 = (
        statistics.quantiles(ordered, n=4, method="inclusive")[::2]
        if len(ordered) > 1
        else (ordered[0], ordered[0])
    )
    return {
        "median": statistics.median(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "q1": q1,
        "q3": q3,
        "n": len(ordered),
    }


FIGURES: dict[str, Callable[[Attempt], float]] = {
    "whole_s": lambda a: a.whole_s,
    "in_process_s": lambda a: a.in_process_s,
    "cpu_s": lambda a: a.cpu_s,
    "peak_rss_mb": lambda a: a.peak_rss_mb,
    "peak_pss_mb": lambda a: a.peak_pss_mb,
}


def figures(attempts: Sequence[Attempt], *, feeds: int) -> dict[str, Any]:
    """Per tool and kind of attempt, each figure's spread; per kind, the paired ratios."""
    out: dict[str, Any] = {}
    for tool in TOOLS:
        mine = [a for a in attempts if a.tool == tool]
        if not mine:
            continue
        out[tool] = {
            kind: {
                name: spread([get(a) for a in mine if a.kind == kind])
                for name, get in FIGURES.items()
            }
            for kind in KINDS
            if any(a.kind == kind for a in mine)
        }
        cold = [a for a in mine if a.kind == "cold"]
        out[tool]["cold"]["cpu_ms_per_entry"] = spread(
            [1000 * a.cpu_s / max(int(a.store.get("entries", 0)), 1) for a in cold]
        )
        warm = [a for a in mine if a.kind == "304"]
        out[tool]["304"]["cpu_ms_per_feed"] = spread([1000 * a.cpu_s / feeds for a in warm])
        out[tool]["peak_rss_mb"] = max(a.peak_rss_mb for a in mine if a.kind in PASSES)
    if len(out) == len(TOOLS):
        out["ratios"] = {
            kind: {name: spread(_paired(attempts, kind, get)) for name, get in FIGURES.items()}
            for kind in KINDS
        }
        out["ratios"]["cold"]["cpu_per_entry"] = spread(
            _paired(attempts, "cold", lambda a: a.cpu_s / max(int(a.store["entries"]), 1))
        )
    return out


def _paired(attempts: Sequence[Attempt], kind: str, get: Callable[[Attempt], float]) -> list[float]:
    """reader / ours for each run (above 1: ours is faster, leaner, lighter)."""
    by_run: dict[int, dict[str, float]] = {}
    for attempt in attempts:
        if attempt.kind == kind:
            by_run.setdefault(attempt.run, {})[attempt.tool] = get(attempt)
    return [pair["reader"] / pair["ours"] for pair in by_run.values() if pair.get("ours")]


def _cell(side: dict[str, Any] | None, digits: int) -> str:
    if side is None:
        return "—"
    return f"{side['median']:,.{digits}f} [{side['min']:,.{digits}f}–{side['max']:,.{digits}f}]"


def _verdict(passed: bool, *, exact: bool) -> str:
    return ("met" if passed else "NOT met") + ("" if exact else "*")


NO_TARGET = ("no target", "")


def table(computed: dict[str, Any], setting: Setting, feeds: int) -> list[Row]:
    """The setting's figures, each with its ratio, target and verdict."""
    ours, reader, ratios = computed.get("ours"), computed.get("reader"), computed.get("ratios")
    at_scale = feeds in TARGET_SCALES
    ratio_setting = setting.topology == RATIO_TOPOLOGY

    def pick(side: dict[str, Any] | None, kind: str, name: str) -> dict[str, Any] | None:
        return None if side is None or kind not in side else side[kind].get(name)

    def ratio_target(kind: str, name: str) -> tuple[str, str]:
        if name != "whole_s" or ratios is None:
            return NO_TARGET
        if kind == "cold":
            factor = PINNED_COLD_RATIO if setting.pinned else COLD_RATIO
        elif kind == "304" and not setting.pinned:
            factor = ALL_304_RATIO
        else:
            return NO_TARGET
        median = ratios[kind][name]["median"]
        exact = at_scale and ratio_setting
        where = f"{RATIO_TOPOLOGY}, {'pinned, ' if setting.pinned else ''}500/10,000 feeds"
        return f"≥ {factor:g}× reader ({where})", _verdict(median >= factor, exact=exact)

    def ratio_cell(kind: str, name: str) -> str:
        if ratios is None:
            return "—"
        side = ratios[kind][name]
        return f"{side['median']:.2f}× [{side['min']:.2f}–{side['max']:.2f}]"

    rows: list[Row] = []
    labels = {"cold": "cold pass", "304": "all-304 pass", "steady": "steady pass (10 % changed)"}
    for kind, label in labels.items():
        for name, what, digits in (
            ("whole_s", "whole process, s", 2),
            ("in_process_s", "in-process, s", 2),
            ("cpu_s", "CPU s, process tree", 2),
        ):
            target, verdict = ratio_target(kind, name)
            if kind == "304" and name == "whole_s" and ours is not None:
                target, verdict = _all_304_seconds(ours, setting, feeds) or (target, verdict)
            rows.append(
                Row(
                    f"{label}, {what}",
                    _cell(pick(ours, kind, name), digits),
                    _cell(pick(reader, kind, name), digits),
                    ratio_cell(kind, name),
                    target,
                    verdict,
                )
            )
    rows.append(
        Row(
            "cold pass, CPU ms per entry",
            _cell(pick(ours, "cold", "cpu_ms_per_entry"), 3),
            _cell(pick(reader, "cold", "cpu_ms_per_entry"), 3),
            "—" if ratios is None else f"{ratios['cold']['cpu_per_entry']['median']:.2f}×",
            *NO_TARGET,
        )
    )
    rows.append(
        Row(
            "all-304 pass, CPU ms per feed",
            _cell(pick(ours, "304", "cpu_ms_per_feed"), 3),
            _cell(pick(reader, "304", "cpu_ms_per_feed"), 3),
            "—" if ratios is None else ratio_cell("304", "cpu_s"),
            *NO_TARGET,
        )
    )
    peak = (
        None if ours is None else ours["peak_rss_mb"],
        None if reader is None else reader["peak_rss_mb"],
    )
    rows.append(
        Row(
            "peak RSS summed over the tree, any pass, MB",
            "—" if peak[0] is None else f"{peak[0]:.1f}",
            "—" if peak[1] is None else f"{peak[1]:.1f}",
            "—" if None in peak or not peak[0] else f"{peak[1] / peak[0]:.2f}×",
            f"< {RSS_LIMIT_MB:g} MB at {RSS_FEEDS:,} feeds (ours)",
            "" if peak[0] is None else _verdict(peak[0] < RSS_LIMIT_MB, exact=feeds == RSS_FEEDS),
        )
    )
    first = pick(ours, "search", "whole_s")
    rows.append(
        Row(
            f"first search after the cold pass, whole process, s ({SEARCH_WORD!r})",
            _cell(first, 3),
            _cell(pick(reader, "search", "whole_s"), 3),
            ratio_cell("search", "whole_s"),
            f"< {FIRST_SEARCH_S:g} s (ours)",
            "" if first is None else _verdict(first["median"] < FIRST_SEARCH_S, exact=True),
        )
    )
    return rows


def _all_304_seconds(ours: dict[str, Any], setting: Setting, feeds: int) -> tuple[str, str] | None:
    """The absolute all-304 target, read on its farm; scaled linearly from other feed counts."""
    if setting.topology != ALL_304_TOPOLOGY or setting.pinned:
        return None
    seconds = ours["304"]["whole_s"]["median"] * ALL_304_FEEDS / feeds
    return (
        f"ours < {ALL_304_SECONDS:g} s at {ALL_304_FEEDS:,} feeds",
        _verdict(seconds < ALL_304_SECONDS, exact=feeds == ALL_304_FEEDS),
    )


def print_table(rows: Sequence[Row]) -> None:
    headers = Row("figure", "ours", "reader", "reader/ours", "target", "verdict")
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


def print_attempt(attempt: Attempt) -> None:
    farm = attempt.farm
    print(
        f"  run {attempt.run} {attempt.tool:<6} {attempt.kind:>6}: {attempt.whole_s:7.2f} s whole, "
        f"{attempt.in_process_s:7.2f} s in-process, CPU {attempt.cpu_s:6.2f} s; "
        f"peak RSS {attempt.peak_rss_mb:5.1f} MB ({attempt.peak_processes} processes); farm "
        f"{farm.get('200', 0):g}x200 {farm.get('304', 0):g}x304; other load "
        f"{attempt.other_load:.0%}",
        flush=True,
    )


def durability(workdir: Path) -> dict[str, dict[str, str]]:
    """Each tool's journal mode and synchronous level, read from its own connection."""
    found: dict[str, dict[str, str]] = {}
    for tool in TOOLS:
        folder = workdir / tool
        if not folder.exists():
            continue
        done = run_checked(
            [sys.executable, "-m", "bench.runner", "durability", tool, f"--workdir={folder}"],
            env=clean_env(),
        )
        found[tool] = json.loads(done.stdout)
    return found


MEANING = {
    "NORMAL": "commits are not synced one by one: a power cut may lose the last ones, never "
    "corrupts the store",
    "FULL": "every commit is synced to disk before it returns: it survives a power cut",
}


def describe_durability(found: dict[str, dict[str, str]]) -> list[str]:
    lines = [
        f"  {tool}: journal_mode={setting['journal_mode']}, synchronous={setting['synchronous']}"
        f" ({MEANING.get(setting['synchronous'], 'see the SQLite documentation')})"
        for tool, setting in found.items()
    ]
    levels = {setting["synchronous"] for setting in found.values()}
    if len(levels) > 1:
        lines.append("  the stores are not equally durable: read the cold-pass ratios with that")
    return lines


def run_setting(setting: Setting, args: argparse.Namespace) -> dict[str, Any]:
    """Every run of both tools on one setting's farm: attempts, figures, table, problems."""
    topology = TOPOLOGIES[setting.topology]
    folder = args.workdir / (setting.topology + ("-pinned" if setting.pinned else ""))
    folder.mkdir(parents=True, exist_ok=True)
    farm, trust = start_farm(topology, args.feeds, args.items, seed=args.seed, workdir=folder)
    attempts: list[Attempt] = []
    problems: list[str] = []
    print(f"\n== {setting.name} ==", flush=True)
    with farm:
        print(
            f"farm: {farm.documents:,} documents ({farm.replayed} replayed), "
            f"{farm.bytes / 2**20:,.1f} MiB, {farm.hosts} host(s), port {farm.port}",
            flush=True,
        )
        urls_file = folder / "urls.txt"
        urls_file.write_text("\n".join(farm.urls()) + "\n", encoding="utf-8")
        plan = Plan(
            farm=farm,
            folder=folder,
            urls_file=urls_file,
            in_flight=args.in_flight,
            pinned=setting.pinned,
            timeout_s=max(900.0, farm.documents * args.items / 20),
            search_word=SEARCH_WORD,
            env=clean_env(trust.env() if trust else None),
            expected_entries=None if topology.corpus else args.feeds * args.items,
        )
        for run in range(1, args.runs + 1):
            wait_for_quiet(args.quiet, args.patience)
            for tool in args.tools:
                done, found = run_sequence(tool, run, plan)
                for attempt in done:
                    print_attempt(attempt)
                attempts += done
                problems += found
        found_durability = durability(folder)
        stats = farm.stats()
    if topology.gzip and stats.get("gzip", 0) != stats.get("requests", 0):
        problems.append(f"{setting.name}: not every response was gzip-compressed: {stats}")
    computed = figures(attempts, feeds=farm.documents)
    rows = table(computed, setting, args.feeds)
    print()
    print_table(rows)
    print("durability:")
    print("\n".join(describe_durability(found_durability)))
    return {
        "setting": setting.name,
        "topology": asdict(topology),
        "pinned": setting.pinned,
        "documents": farm.documents,
        "replayed": farm.replayed,
        "document_bytes": farm.bytes,
        "hosts": farm.hosts,
        "durability": found_durability,
        "figures": computed,
        "table": [asdict(row) for row in rows],
        "attempts": [asdict(attempt) for attempt in attempts],
        "problems": problems,
    }


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
        return {"skipped": "search latency at scale not asked for (--search-posts 0)"}
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


def settings(args: argparse.Namespace) -> list[Setting]:
    chosen = list(TOPOLOGIES) if args.full else (args.topology or [DEFAULT])
    found = [Setting(name, pinned=False) for name in dict.fromkeys(chosen)]
    if args.pinned and RATIO_TOPOLOGY in chosen:
        found.insert(1 + chosen.index(RATIO_TOPOLOGY), Setting(RATIO_TOPOLOGY, pinned=True))
    return found


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark feed-ingest against reader on a loopback feed farm."
    )
    parser.add_argument("--feeds", type=int, default=500, help="generated feeds in the farm")
    parser.add_argument("--items", type=int, default=20, help="items per feed")
    parser.add_argument("--seed", type=int, default=SEED, help="content seed")
    parser.add_argument("--runs", type=int, default=RUNS, help="alternating runs per tool")
    parser.add_argument(
        "--in-flight", type=int, default=IN_FLIGHT, help="requests at once, for both tools"
    )
    parser.add_argument(
        "--topology",
        action="append",
        choices=list(TOPOLOGIES),
        help=f"farm setting; repeatable [{DEFAULT}]",
    )
    parser.add_argument("--full", action="store_true", help="every topology")
    parser.add_argument(
        "--no-pinned",
        dest="pinned",
        action="store_false",
        help=f"skip the {RATIO_TOPOLOGY} run pinned to one core",
    )
    parser.add_argument("--tools", default=",".join(TOOLS), help="ours,reader (default both)")
    parser.add_argument("--stage-feeds", type=int, default=50, help="documents for the stages")
    parser.add_argument("--stage-rounds", type=int, default=5)
    parser.add_argument("--search-posts", type=int, default=0, help="search latency at scale")
    parser.add_argument("--search-rounds", type=int, default=10)
    parser.add_argument("--search-cache", type=Path, default=SEARCH_CACHE)
    parser.add_argument(
        "--quiet", type=float, default=0.10, help="machine load to wait for before each run"
    )
    parser.add_argument("--patience", type=float, default=120, help="longest wait for quiet, s")
    parser.add_argument("--workdir", type=Path, help="stores and logs [bench/.cache/run-NxM]")
    parser.add_argument("--json", type=Path, help="results file [WORKDIR/results.json]")
    args = parser.parse_args(argv)
    args.tools = [tool for tool in args.tools.split(",") if tool]
    if set(args.tools) - set(TOOLS) or not args.tools:
        parser.error(f"--tools takes a comma-separated subset of {','.join(TOOLS)}")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    args.workdir = args.workdir or CACHE / f"run-{args.feeds}x{args.items}"
    args.json = args.json or args.workdir / "results.json"
    return args


def targets() -> dict[str, Any]:
    return {
        "setting": f"{RATIO_TOPOLOGY}, {IN_FLIGHT} in flight, whole processes",
        "scales": list(TARGET_SCALES),
        "cold_ratio": COLD_RATIO,
        "all_304_ratio": ALL_304_RATIO,
        "pinned_cold_ratio": PINNED_COLD_RATIO,
        "all_304_seconds": ALL_304_SECONDS,
        "all_304_feeds": ALL_304_FEEDS,
        "all_304_topology": ALL_304_TOPOLOGY,
        "rss_limit_mb": RSS_LIMIT_MB,
        "rss_feeds": RSS_FEEDS,
        "first_search_s": FIRST_SEARCH_S,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    about = machine()
    print(
        f"machine: {about['cpus']} CPUs ({about['cpu_model']}), {about['memory_gib']} GiB, "
        f"Python {about['python']}, SQLite {about['sqlite']}"
    )
    print(
        f"scale: {args.feeds:,} feeds x {args.items} items, {args.in_flight} requests in flight "
        f"for both tools, {args.runs} alternating run(s) per tool",
        flush=True,
    )
    print(f"machine load before the run: {machine_load():.0%} of {about['cpus']} CPUs", flush=True)
    results = [run_setting(setting, args) for setting in settings(args)]
    print("\nstages (in-process, one core) ...", flush=True)
    stages = run_stages(args, args.workdir)
    search = run_search(args, args.workdir)
    rates = stages["entries_per_s"]
    print(f"stages over {stages['entries']:,} entries ({stages['documents']} documents), one core:")
    for stage, rate in rates.items():
        print(f"  {stage:<16} {rate:>10,.0f} entries/s")
    if "skipped" in search:
        print(search["skipped"])
    else:
        print(f"search at {search['posts']:,} posts: p50 {search['p50_ms']:.1f} ms")
    if any(row["verdict"].endswith("*") for result in results for row in result["table"]):
        print("* indicative: the target is stated for another scale or setting")
    problems = [problem for result in results for problem in result["problems"]]
    document = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": about,
        "versions": versions(),
        "scale": {
            "feeds": args.feeds,
            "items": args.items,
            "seed": args.seed,
            "in_flight": args.in_flight,
            "runs": args.runs,
        },
        "targets": targets(),
        "settings": results,
        "stages": stages,
        "search": search,
        "checks": {"ok": not problems, "problems": problems},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"results: {args.json}")
    for problem in problems:
        print(f"CHECK FAILED: {problem}")
    if problems:
        return 1
    print("checks: every pass of every run did what it should")
    return 0


if __name__ == "__main__":
    sys.exit(main())
