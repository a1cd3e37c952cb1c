"""Every real-world feed of the corpus goes through a whole pass without a crash."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ingest.config import load_settings
from ingest.types import Change
from scheduler.driver import run_once
from storage import open_store
from tests.conftest import DATA, write_config

CORPUS = DATA / "corpus"
NOT_FEEDS = {"MANIFEST.tsv", "SOURCES.md", "URLS.tsv"}


def test_every_corpus_file_yields_posts_or_a_clear_error(tmp_path: Path, sqlite_url: str) -> None:
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name not in NOT_FEEDS)
    assert len(files) > 250  # the whole corpus, not a sample that lost its hard cases
    settings = load_settings(write_config(tmp_path, [{"url": str(p)} for p in files]), env={})
    store = open_store(sqlite_url)
    try:
        summary = asyncio.run(run_once(store, settings))
    finally:
        store.close()

    by_source = {o.source: o for o in summary.outcomes}
    assert set(by_source) == {str(p) for p in files}
    crashes = [o for o in summary.outcomes if o.error and o.error.startswith("internal error")]
    assert crashes == []
    for outcome in summary.failed:
        assert outcome.error, outcome.source  # every failure says why
    assert len(summary.failed) < len(files) // 5
    assert summary.total(Change.NEW) > 2500
    known_bad = {
        "gofeed/testdata/parser/universal/empty_feed.xml": "empty",
        "gofeed/testdata/parser/universal/invalid.json": "invalid JSON",
        "gofeed/testdata/parser/universal/unknown_feed.xml": "not an RSS, Atom or JSON feed",
    }
    for relative, reason in known_bad.items():
        outcome = by_source[str(CORPUS / relative)]
        assert not outcome.status.succeeded
        assert reason in (outcome.error or "")
