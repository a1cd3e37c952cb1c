"""The benchmark harness keeps working: the comparison at a tiny scale, and the search store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.search import QUERIES, RARE_POSTS, RARE_TERM, ensure_store, measure
from storage import open_store

ROOT = Path(__file__).resolve().parent.parent
FEEDS, ITEMS = 20, 5
FIGURES = (
    "cold pass, entries/s",
    "all-304 pass, feeds/s",
    "all-304 pass, s",
    "peak RSS of any pass, MB",
    "peak RSS cold / 2nd / 3rd, MB",
    "peak PSS of the cold pass, MB",
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
            "--stage-feeds=4",
            "--stage-rounds=1",
            "--search-posts=200",
            "--search-rounds=2",
            "--retries=0",  # a busy CI machine makes figures noisy, not wrong
            "--patience=0",
            f"--search-cache={tmp_path / 'search'}",
            f"--workdir={tmp_path}",
            f"--json={results_file}",
        ],
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    printed = done.stdout
    for figure in FIGURES:
        line = next(line for line in printed.splitlines() if line.startswith(figure))
        assert "—" not in line, line  # a figure for each tool
    assert printed.startswith("machine: ")
    assert f"Python {sys.version.split()[0]}" in printed
    for stage in ("parse", "normalize", "store", "bottleneck"):
        assert f"  {stage}" in printed
    assert "search p50" in printed or "search benchmark not asked for" in printed

    results = json.loads(results_file.read_text(encoding="utf-8"))
    assert results["checks"] == {"ok": True, "problems": []}
    for tool in ("ours", "reader"):
        cold, second, third = results["passes"][tool]
        for one in (cold, second, third):
            assert one["runner"]["entries"] == FEEDS * ITEMS
            assert one["runner"]["errors"] == 0
        assert cold["farm"]["200"] == FEEDS
        assert second["farm"]["304"] == third["farm"]["304"] == FEEDS
        assert results["figures"][tool]["cold_entries_per_s"] > 0
    assert results["table"][0]["figure"] == FIGURES[0]


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
