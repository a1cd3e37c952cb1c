"""One tool's sequence of passes on a fresh store, each a whole process, measured and checked.

A sequence (``run_sequence``) is what a user's first minutes with a tool look like, repeated
the same way for both tools:

1. the farm is put back to its first revision and the tool's store folder emptied;
2. the **cold** pass: every feed new;
3. the **first search** after it: ``ingest entries search WORD`` (ours, the console script) or
   a process opening reader's store and calling ``search_entries`` (reader), timed whole;
4. the **all-304** pass: every feed answers 304;
5. the farm serves a tenth of its generated feeds at the next revision (one new item, one
   edited: ``bench.corpus.feed_document``) and the **steady** pass fetches them.

Each pass is ``bench.runner`` in a process of its own, timed from the outside (start-up, imports
and exit included), with its process tree's CPU time and peak memory (``bench.measure``) and its
own in-process figures beside. Optionally pinned to one core (``taskset -c 0``). Each is then
checked against what the farm saw and what the store holds (``check``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.farm import Farm, stats_delta
from bench.measure import machine_busy_s, own_cpu_s, run_sampled
from bench.runner import command as runner_command
from bench.runner import count_ours, count_reader, ours_url

PASSES = ("cold", "304", "steady")
PIN = ("taskset", "-c", "0")
REPLAYED = "/replay/"
INGEST = str(Path(sys.executable).parent / "ingest")
CPUS = os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class Plan:
    """Where and how one setting's sequences run."""

    farm: Farm
    folder: Path
    urls_file: Path
    in_flight: int
    pinned: bool
    timeout_s: float
    search_word: str
    env: dict[str, str]
    expected_entries: int | None
    """Entries a cold pass stores (feeds x items); None when replayed documents are served."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One measured process: a pass or the first search, of one tool, in one run."""

    tool: str
    run: int
    kind: str
    whole_s: float
    in_process_s: float
    cpu_s: float
    cpu_user_s: float
    cpu_system_s: float
    peak_rss_mb: float
    peak_pss_mb: float
    peak_processes: int
    other_load: float
    """Share of the machine's CPU that processes outside the benchmark used meanwhile."""
    runner: dict[str, Any]
    store: dict[str, Any] = field(default_factory=dict)
    farm: dict[str, Any] = field(default_factory=dict)


def _prefix(plan: Plan) -> list[str]:
    return list(PIN) if plan.pinned else []


def _measure(
    tool: str, run: int, kind: str, command: list[str], *, plan: Plan, folder: Path
) -> Attempt:
    out = folder / f"{kind}.json"
    out.unlink(missing_ok=True)
    before = plan.farm.stats()
    busy, mine = machine_busy_s(), own_cpu_s()
    with (folder / f"{kind}.log").open("w", encoding="utf-8") as log:
        sampled = run_sampled(
            [*_prefix(plan), *command],
            env=plan.env,
            stdout=log,
            stderr=log,
            timeout_s=plan.timeout_s,
        )
    busy, mine = machine_busy_s() - busy, own_cpu_s() - mine
    farm_seen = stats_delta(before, plan.farm.stats())
    if sampled.returncode != 0:
        raise RuntimeError(
            f"{tool} {kind} (run {run}) failed with exit code {sampled.returncode}; "
            f"see {folder / f'{kind}.log'}"
        )
    runner: dict[str, Any] = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    other_s = max(busy - mine - sampled.cpu_s - farm_seen.get("cpu_s", 0.0), 0.0)
    return Attempt(
        tool=tool,
        run=run,
        kind=kind,
        whole_s=sampled.wall_s,
        in_process_s=float(runner.get("seconds", sampled.wall_s)),
        cpu_s=sampled.cpu_s,
        cpu_user_s=sampled.cpu_user_s,
        cpu_system_s=sampled.cpu_system_s,
        peak_rss_mb=sampled.peak_rss_mb,
        peak_pss_mb=sampled.peak_pss_mb,
        peak_processes=sampled.peak_processes,
        other_load=other_s / (sampled.wall_s * CPUS) if sampled.wall_s else 0.0,
        runner=runner,
        farm=farm_seen,
    )


def run_pass(tool: str, run: int, kind: str, plan: Plan) -> Attempt:
    folder = plan.folder / tool
    command = runner_command(
        tool,
        workdir=folder,
        urls=plan.urls_file,
        workers=plan.in_flight,
        out=folder / f"{kind}.json",
    )
    attempt = _measure(tool, run, kind, command, plan=plan, folder=folder)
    store = count_ours(folder) if tool == "ours" else count_reader(folder)
    return Attempt(**{**_fields(attempt), "store": store})


def run_search(tool: str, run: int, plan: Plan) -> Attempt:
    """The first search after the cold pass, as a whole process."""
    folder = plan.folder / tool
    if tool == "ours":
        command = [INGEST, "--db", ours_url(folder), "entries", "search", plan.search_word]
    else:
        command = runner_command(
            "reader-search",
            workdir=folder,
            urls=plan.urls_file,
            workers=plan.in_flight,
            out=folder / "search.json",
            query=plan.search_word,
        )
    return _measure(tool, run, "search", command, plan=plan, folder=folder)


def _fields(attempt: Attempt) -> dict[str, Any]:
    return {name: getattr(attempt, name) for name in Attempt.__slots__}


def run_sequence(tool: str, run: int, plan: Plan) -> tuple[list[Attempt], list[str]]:
    """Cold, first search, all-304, steady for ``tool`` on a fresh store; and the problems."""
    folder = plan.folder / tool
    plan.farm.revise(0)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    cold = run_pass(tool, run, "cold", plan)
    search = run_search(tool, run, plan)
    all_304 = run_pass(tool, run, "304", plan)
    changed = len(plan.farm.revise(1))
    steady = run_pass(tool, run, "steady", plan)
    counts = {"documents": plan.farm.documents, "replayed": plan.farm.replayed}
    problems = check(cold, changed=0, entries=plan.expected_entries, **counts)
    stored = int(cold.store["entries"])
    problems += check(all_304, changed=0, entries=stored, **counts)
    problems += check(steady, changed=changed, entries=stored + changed, **counts)
    if search.runner.get("hits", 1) == 0:
        problems.append(f"{tool} run {run}: reader's search found nothing")
    return [cold, search, all_304, steady], problems


def check(
    attempt: Attempt, *, documents: int, changed: int, entries: int | None, replayed: int = 0
) -> list[str]:
    """What is wrong with a pass; empty when it did exactly what it should.

    ``changed`` is how many documents changed since the previous pass (the cold pass: all of
    them, whatever is passed); ``entries`` what the store must hold afterwards (None: unknown).
    Replayed corpus documents are real feeds that one tool or the other may refuse (reader: an
    entry without an id) or not cache (no validators kept): with ``replayed`` documents, the
    farm's counts and the failures of those documents are recorded, not checked.
    """
    problems: list[str] = []
    runner, store, farm = attempt.runner, attempt.store, attempt.farm
    name = f"{attempt.tool} {attempt.kind} pass (run {attempt.run})"

    def expect(what: str, got: object, wanted: object) -> None:
        if got != wanted:
            problems.append(f"{name}: {what} is {got!r}, expected {wanted!r}")

    fetched = documents if attempt.kind == "cold" else changed
    failing = [f for f in store.get("failing", []) if not (replayed and REPLAYED in f)]
    # ``ingest run`` exits 1 when a source failed; replayed documents may fail, as said above.
    failed_run = attempt.tool == "ours" and replayed and bool(store.get("failing"))
    expect("exit code", runner.get("exit_code"), 1 if failed_run else 0)
    expect("feeds whose last check failed", len(failing), 0)
    expect("feeds in the store", store.get("feeds"), documents)
    if entries is not None:
        expect("stored entries", store.get("entries"), entries)
    expect("farm 404 responses", farm.get("404", 0), 0)
    if failing:
        problems.append(f"{name}: first failing feeds: {failing[:3]}")
    if replayed:
        return problems
    expect("farm 200 responses", farm.get("200", 0), fetched)
    expect("farm 304 responses", farm.get("304", 0), documents - fetched)
    if attempt.tool == "ours":
        wanted = {"ok": fetched, "not_modified": documents - fetched}
        expect("sources by status", store.get("statuses"), {k: v for k, v in wanted.items() if v})
    else:
        expect("feeds not modified", runner.get("not_modified"), documents - fetched)
        if attempt.kind == "steady":
            expect("new entries", runner.get("new"), changed)
            expect("modified entries", runner.get("modified"), changed)
    return problems


def machine_load(seconds: float = 1.0) -> float:
    """The share of the machine's CPU in use over the next ``seconds``."""
    busy = machine_busy_s()
    time.sleep(seconds)
    return (machine_busy_s() - busy) / (seconds * CPUS)


def wait_for_quiet(threshold: float, patience_s: float) -> float:
    """Wait (at most ``patience_s``) until the machine's load is under ``threshold``."""
    if patience_s <= 0:
        return 0.0
    deadline = time.monotonic() + patience_s
    load = machine_load()
    while load > threshold and time.monotonic() < deadline:
        load = machine_load(5.0)
    return load
