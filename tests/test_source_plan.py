"""``ingest.sources``: which stored source a URL is, and what applying the config does; pure,
named cases, no store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest.sources import duplicate_of, plan_config
from ingest.types import SourceSpec, SourcesPlan, StoredSource

NOW = datetime(2024, 6, 1, tzinfo=UTC)
SEEDS = "/opt/feed-ingest/seeds"


def source(
    source_id: int,
    url: str,
    origin: str = "config",
    *,
    enabled: bool = True,
    retired: bool = False,
    previous: tuple[str, ...] = (),
    name: str | None = None,
) -> StoredSource:
    return StoredSource(
        id=source_id,
        spec=SourceSpec(url=url, name=name),
        origin=origin,
        enabled=enabled and not retired,
        title=None,
        created_at=NOW,
        previous_urls=previous,
        retired_at=NOW if retired else None,
    )


def spec(url: str, name: str | None = None) -> SourceSpec:
    return SourceSpec(url=url, name=name)


A, B = "https://a.example/f", "https://b.example/f"


@pytest.mark.parametrize(
    ("stored", "wanted", "builtin", "plan"),
    [
        pytest.param([], [spec(A)], False, SourcesPlan(add=(spec(A),)), id="a new source"),
        pytest.param([source(1, A)], [spec(A)], False, SourcesPlan(), id="unchanged config"),
        pytest.param(
            [source(1, A)],
            [spec(A, "n")],
            False,
            SourcesPlan(update=((1, spec(A, "n")),)),
            id="changed settings",
        ),
        pytest.param(
            [source(1, A), source(2, B)], [spec(A)], False, SourcesPlan(retire=(2,)), id="left"
        ),
        pytest.param(
            [source(1, A), source(2, B, "cli"), source(3, "/x", "opml")],
            [spec(A)],
            False,
            SourcesPlan(),
            id="the user's own sources are never retired",
        ),
        pytest.param(
            [source(1, B, enabled=False)], [], False, SourcesPlan(), id="already disabled stays"
        ),
        pytest.param(
            [source(1, B, retired=True)], [], False, SourcesPlan(), id="retired once, not twice"
        ),
        pytest.param(
            [source(1, B, retired=True)],
            [spec(B)],
            False,
            SourcesPlan(revive=(1,)),
            id="listed again",
        ),
        pytest.param(
            [source(1, "https://EXAMPLE.org:443/f")],
            [spec("https://example.org/f")],
            False,
            SourcesPlan(),
            id="a URL stored before canonical form is the same source",
        ),
        pytest.param(
            [source(1, B, previous=(A,))],
            [spec(A)],
            False,
            SourcesPlan(),
            id="the URL a source moved away from",
        ),
        pytest.param(
            [], [spec(SEEDS)], True, SourcesPlan(add=(spec(SEEDS),)), id="built-in, empty store"
        ),
        pytest.param(
            [source(1, A, "cli")], [spec(SEEDS)], True, SourcesPlan(), id="built-in, own sources"
        ),
        pytest.param(
            [source(1, SEEDS), source(2, A, "cli")],
            [spec(SEEDS)],
            True,
            SourcesPlan(retire=(1,)),
            id="built-in retires only its own source",
        ),
        pytest.param(
            [source(1, A), source(2, B)],
            [spec(SEEDS)],
            True,
            SourcesPlan(),
            id="no config file never retires a real config's sources",
        ),
    ],
)
def test_plan_config(
    stored: list[StoredSource], wanted: list[SourceSpec], builtin: bool, plan: SourcesPlan
) -> None:
    assert plan_config(stored, wanted, builtin=builtin) == plan


def test_a_source_listed_twice_takes_its_last_settings() -> None:
    plan = plan_config([], [spec(A, "first"), spec(B), spec(A + "#x", "last")], builtin=False)
    assert plan.add == (spec(A + "#x", "last"), spec(B))


@pytest.mark.parametrize(
    "url", ["https://A.example/f", "https://a.example:443/f", "https://a.example/f#top"]
)
def test_every_spelling_of_a_url_is_the_stored_source(url: str) -> None:
    stored = [source(1, A), source(2, B, previous=("https://old.example/f",))]
    assert duplicate_of(stored, url) == stored[0]
    assert duplicate_of(stored, "https://old.example/f") == stored[1]
    assert duplicate_of(stored, "https://c.example/f") is None
