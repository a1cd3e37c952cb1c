"""The fast path (``ingest.digest.fast``) against feedparser: the same posts, field by field.

Every document of ``tests/data/corpus`` and the fixtures is digested twice, the fast path forced
on and forced off; the digests (posts, feed title, skipped entries, TTL, dates) or the errors
must be identical. A document the fast path declines is read by feedparser both times, so it
counts as equal; the test also holds the share of documents that take the fast path, so that a
change which makes it decline everything cannot pass unnoticed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import astuple
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.digest import fast
from ingest.digest.document import digest_feed
from ingest.errors import DocumentError
from ingest.types import SourceSpec
from tests.conftest import DATA

NOW = datetime(2025, 1, 1, tzinfo=UTC)
NOT_FEEDS = {"MANIFEST.tsv", "SOURCES.md", "URLS.tsv"}
URL = "https://example.com/feed.xml"

DIFFERENCES: dict[str, str] = {}
"""Documents whose fast reading differs on purpose, by path under tests/data, with the reason
(an improvement over feedparser's reading). Empty: none differs."""


def _documents() -> list[Path]:
    corpus = [p for p in (DATA / "corpus").rglob("*") if p.is_file() and p.name not in NOT_FEEDS]
    fixtures = [*DATA.glob("*.xml"), *DATA.glob("golden/*.xml"), *DATA.glob("hostile/*.xml")]
    return sorted(corpus + fixtures)


DOCUMENTS = _documents()


def _digest(data: bytes, *, fast_path: bool, url: str) -> object:
    fast.ENABLED = fast_path
    try:
        digest = digest_feed(data, spec=SourceSpec(url=url), comments=False, now=NOW, url=url)
    except DocumentError as exc:
        return ("error", exc.kind, str(exc))
    finally:
        fast.ENABLED = True
    return (
        digest.feed_title,
        [astuple(post) for post in digest.posts],
        digest.skipped,
        digest.ttl_s,
        digest.published_dates,
    )


def _taken(data: bytes, url: str) -> bool:
    """Whether the fast path reads the document (rather than declining it)."""
    taken: list[bool] = []
    original = fast.read

    def spy(text: str) -> dict[str, object] | None:
        result = original(text)
        taken.append(result is not None)
        return result

    fast.read = spy
    try:
        _digest(data, fast_path=True, url=url)
    finally:
        fast.read = original
    return any(taken)


def _cases() -> Iterator[tuple[Path, str]]:
    for path in DOCUMENTS:
        # Local files (relative links against the channel link) and fetched ones (against
        # the document's URL) take different branches of the base-URL rules: both.
        yield path, ""
        yield path, URL


@pytest.mark.parametrize(
    ("path", "url"), list(_cases()), ids=lambda v: str(v).replace(str(DATA), "")
)
def test_both_paths_digest_the_same_posts(path: Path, url: str) -> None:
    data = path.read_bytes()
    relative = str(path.relative_to(DATA))
    slow = _digest(data, fast_path=False, url=url)
    quick = _digest(data, fast_path=True, url=url)
    if relative in DIFFERENCES:
        assert quick != slow, f"{relative} no longer differs: drop it from DIFFERENCES"
        return
    assert quick == slow


def test_most_well_formed_feeds_take_the_fast_path() -> None:
    taken = [path for path in DOCUMENTS if _taken(path.read_bytes(), URL)]
    # Measured when written: see docs/performance.md ("The fast path").
    assert len(taken) >= 0.55 * len(DOCUMENTS), (len(taken), len(DOCUMENTS))


def test_the_switch_turns_the_fast_path_off() -> None:
    text = (DATA / "golden" / "rss2.xml").read_text("utf-8")
    assert fast.read(text) is not None
    fast.ENABLED = False
    try:
        assert fast.read(text) is None
    finally:
        fast.ENABLED = True
