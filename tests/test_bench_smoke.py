"""The benchmark harness keeps working: the comparison at a tiny scale, and the search store."""

from __future__ import annotations

import gzip
import json
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench.search import QUERIES, RARE_POSTS, RARE_TERM, ensure_store, measure
from storage import open_store

ROOT = Path(__file__).resolve().parent.parent
FEEDS, ITEMS = 20, 5
FIGURES = (
    "cold pass, whole process, s",
    "cold pass, in-process, s",
    "all-304 pass, whole process, s",
    "steady pass (10 % changed), whole process, s",
    "cold pass, CPU ms per entry",
    "peak RSS summed over the tree, any pass, MB",
    "first search after the cold pass, whole process, s",
)


def run_bench(args: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a benchmark script from the checkout, as a user would, keeping what it printed."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
def test_compare_measures_both_tools_at_a_tiny_scale(tmp_path: Path) -> None:
    results_file = tmp_path / "results.json"
    done = run_bench(
        [
            "bench/compare.py",
            f"--feeds={FEEDS}",
            f"--items={ITEMS}",
            "--runs=1",
            "--stage-feeds=4",
            "--stage-rounds=1",
            "--patience=0",
            f"--workdir={tmp_path}",
            f"--json={results_file}",
        ],
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    printed = done.stdout
    assert printed.startswith("machine: ")
    assert "== one-host ==" in printed
    assert "== one-host, pinned to one core ==" in printed
    for figure in FIGURES:
        line = next(line for line in printed.splitlines() if line.startswith(figure))
        assert "—" not in line, line  # a figure for each tool
        assert "met" in line or "no target" in line, line
    assert "ours: journal_mode=WAL, synchronous=NORMAL" in printed
    assert "reader: journal_mode=WAL, synchronous=" in printed

    results = json.loads(results_file.read_text(encoding="utf-8"))
    assert results["checks"] == {"ok": True, "problems": []}
    free, pinned = results["settings"]
    assert pinned["pinned"]
    assert not free["pinned"]
    kinds = [(a["tool"], a["kind"]) for a in free["attempts"]]
    assert kinds == [
        (tool, kind) for tool in ("ours", "reader") for kind in ("cold", "search", "304", "steady")
    ]
    for attempt in free["attempts"]:
        assert attempt["whole_s"] >= attempt["in_process_s"] > 0
        assert attempt["cpu_s"] > 0
    steady = [a for a in free["attempts"] if a["kind"] == "steady"]
    for attempt in steady:
        assert attempt["farm"]["200"] == 2  # a tenth of the feeds changed
        assert attempt["store"]["entries"] == FEEDS * ITEMS + 2


def test_the_farm_serves_every_topology(tmp_path: Path) -> None:
    from bench.topology import TOPOLOGIES, start_farm

    for name in ("gzip", "latency", "tls", "corpus"):
        farm, trust = start_farm(TOPOLOGIES[name], 10, 2, seed=1, workdir=tmp_path / name)
        context = ssl.create_default_context(cafile=str(trust.ca)) if trust else None
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
        with farm:
            url = farm.urls()[-1]
            assert url.startswith("https://" if name == "tls" else "http://127.0.0.1:")
            request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
            started = time.perf_counter()
            with opener.open(request) as response:
                body = response.read()
                encoding = response.headers.get("Content-Encoding")
            elapsed = time.perf_counter() - started
            if name == "gzip":
                assert encoding == "gzip"
                body = gzip.decompress(body)
            if name == "latency":
                assert elapsed >= 0.05
            assert body.lstrip().startswith(b"<")
            if name == "corpus":
                assert farm.replayed > 50
                assert "/replay/" in url
            assert farm.revise(1) == [0]  # a tenth of the 10 generated feeds
            assert farm.stats()["200"] == 1


def test_search_store_is_readable_and_measured(tmp_path: Path) -> None:
    path, _ = ensure_store(200, cache=tmp_path)
    assert ensure_store(200, cache=tmp_path) == (path, 0.0)  # cached: not generated again
    store = open_store(f"sqlite:///{path}")
    try:
        stored = store.get_post(123)
        assert stored is not None
        assert stored.post.published.tzinfo is not None
        assert "<div>" in stored.post.body
        assert store.index_backlog() == 200  # generated posts wait on the backlog, like ingested
        figures = measure(store, rounds=2)
    finally:
        store.close()
    assert figures["calls"] == 2 * len(QUERIES)
    assert 0 < figures["p50_ms"] <= figures["p95_ms"]
    hits = {query["query"]: query["hits"] for query in figures["queries"]}
    assert hits[RARE_TERM] == RARE_POSTS
    assert hits["芯片"] > 0


@pytest.mark.slow
def test_the_soak_test_runs_and_checks_the_daemon(tmp_path: Path) -> None:
    report_file = tmp_path / "soak.json"
    options = ["--minutes", "0.4", "--feeds", "20", "--json", str(report_file)]
    done = run_bench(
        ["-m", "bench.soak", *options, "--workdir", str(tmp_path / "work")], timeout=180
    )

    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(report_file.read_text(encoding="utf-8"))
    assert all(report["checks"].values()), report["checks"]
    assert report["statuses"]["ok"] >= 20  # every feed polled
    assert report["samples"]


@pytest.mark.slow
@pytest.mark.postgres
def test_the_replicas_benchmark_checks_and_reports_each_count(
    tmp_path: Path, postgres_url: str
) -> None:
    results_file = tmp_path / "replicas.json"
    done = run_bench(
        [
            "-m",
            "bench.replicas",
            f"--feeds={FEEDS}",
            f"--items={ITEMS}",
            "--replicas=1,2",
            "--rounds=1",
            "--workers=8",
            f"--pg={postgres_url.split('?', maxsplit=1)[0]}",
            f"--json={results_file}",
        ],
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 replicas" in done.stdout
    summary = json.loads(results_file.read_text())["summary"]
    assert set(summary) == {"reader", "1", "2"}
    assert summary["2"]["median"] > 0
