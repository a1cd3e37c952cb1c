"""Digesting documents whose markup would make the sanitizer's work explode.

HTML parsers walk the stack of open elements for many tags, so deeply nested markup costs time
quadratic in its depth (100,000 nested ``<div>`` took 20 s). An entry nested deeper than
browsers build is skipped with its reason; a document that is expensive anyway stops being
digested when its time budget is spent, keeping what was done.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.digest.document import digest_feed
from ingest.errors import DocumentError
from ingest.types import Digest, SourceSpec

NOW = datetime(2025, 1, 1, tzinfo=UTC)
NESTED = "<div>" * 30_000 + "deep" + "</div>" * 30_000


def json_feed(*items: dict[str, Any]) -> bytes:
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items}).encode()


def digest(data: bytes, **options: Any) -> Digest:
    spec = SourceSpec(url="https://h.example/feed", name="H")
    return digest_feed(data, spec=spec, comments=False, now=NOW, **options)


def test_an_entry_nested_deeper_than_browsers_build_is_skipped_fast_the_rest_kept() -> None:
    data = json_feed(
        {"id": "deep", "title": "Deep", "content_html": NESTED},
        {"id": "fine", "title": "Fine", "content_html": "<div><p>fine</p></div>"},
    )

    started = time.monotonic()
    result = digest(data)

    assert time.monotonic() - started < 1
    assert [post.title for post in result.posts] == ["Fine"]
    (reason,) = result.skipped
    assert reason.startswith("entry deep: ")
    assert "nests elements more than 512 deep" in reason


def test_deeply_nested_markup_in_titles_is_read_as_text_fast() -> None:
    title = NESTED.replace("<", "&lt;").replace(">", "&gt;")
    data = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>'
        f'<entry><id>1</id><title type="html">{title}</title><content>ok</content></entry>'
        f'<entry><id>2</id><title>Plain</title><content type="html">{title}</content></entry>'
        "</feed>"
    ).encode()

    started = time.monotonic()
    result = digest(data)

    assert time.monotonic() - started < 1
    assert [post.title for post in result.posts] == ["deep"]
    assert result.skipped[0].startswith("entry 2: ")


def test_a_document_that_spends_its_time_budget_keeps_what_was_digested() -> None:
    heavy = "<p>x</p>" * 300_000  # about a quarter of a second to clean
    data = json_feed(
        {"id": "1", "title": "One", "content_html": "<p>1</p>"},
        {"id": "2", "title": "Two", "content_html": heavy},
        {"id": "3", "title": "Three", "content_html": "<p>3</p>"},
        {"id": "4", "title": "Four", "content_html": "<p>4</p>"},
    )

    result = digest(data, budget_s=0.1)

    assert [post.title for post in result.posts] == ["One", "Two"]
    assert len(result.skipped) == 2
    assert result.skipped[0].startswith("entry 3: not read: reading this document")
    assert "0.1s" in result.skipped[0]


def test_a_document_over_budget_before_any_entry_fails_with_the_reason() -> None:
    data = json_feed({"id": "1", "title": "One", "content_html": "<p>1</p>"})
    with pytest.raises(DocumentError, match=r"no usable entries .*took more than 0s"):
        digest(data, budget_s=0)
