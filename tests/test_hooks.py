"""``[[hooks]]`` in the config, and the rules of ``ingest.hooks``: which posts a hook wants,
delivery ids, retry waits, signatures. Pure: no store, no server."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest

from ingest.config import DeliverySettings, load_settings
from ingest.errors import ConfigError
from ingest.hooks import delivery_id, retry_in, router, signature
from ingest.types import Change
from tests.builders import a_post, a_state
from tests.conftest import Cli, write_config

WEBHOOK = {"name": "chat", "on": ["new"], "webhook": "https://chat.example.org/hook"}


def settings_with(tmp_path: Path, *hooks: dict[str, Any]) -> Any:
    return load_settings(write_config(tmp_path, hooks=hooks), env={})


def test_hooks_are_read_with_their_defaults(tmp_path: Path) -> None:
    (hook,) = settings_with(
        tmp_path,
        {**WEBHOOK, "secret": "s", "categories": ["Tech"], "sources": [3, "feeds/a.xml"]},
    ).hooks
    assert hook.on == {Change.NEW}
    assert hook.timeout == 30.0
    assert hook.categories == {"tech"}
    assert hook.sources == {"3", str(tmp_path / "feeds" / "a.xml")}
    assert hook.folder == tmp_path


@pytest.mark.parametrize(
    ("hook", "where", "says"),
    [
        ({**WEBHOOK, "url": "x"}, "hooks[0].url", "unknown key"),
        ({"on": ["new"], "webhook": "https://x.example/"}, "hooks[0]", "has no name"),
        ({**WEBHOOK, "on": ["created"]}, "hooks[0].on", "'created' is not an event"),
        ({**WEBHOOK, "on": []}, "hooks[0].on", "not a list of events"),
        ({**WEBHOOK, "webhook": "ftp://x.example/"}, "hooks[0].webhook", "not an http(s) URL"),
        ({**WEBHOOK, "exec": ["true"]}, "hooks[0]", "exactly one of exec"),
        ({"name": "n", "on": ["new"]}, "hooks[0]", "exactly one of exec"),
        ({"name": "n", "on": ["new"], "exec": "notify.sh"}, "hooks[0].exec", "as a list"),
        (
            {"name": "n", "on": ["new"], "exec": ["true"], "secret": "s"},
            "hooks[0].secret",
            "signs webhook bodies",
        ),
        ({**WEBHOOK, "name": "a b"}, "hooks[0].name", "is not a hook name"),
        ({**WEBHOOK, "timeout": "soon"}, "hooks[0].timeout", "is not a duration"),
        ({**WEBHOOK, "sources": [True]}, "hooks[0].sources", "not a source id"),
    ],
)
def test_a_bad_hook_is_refused_naming_its_key(
    tmp_path: Path, hook: dict[str, Any], where: str, says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_with(tmp_path, hook)
    assert caught.value.where.endswith(where)
    assert says in caught.value.reason


def test_two_hooks_of_one_name_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_with(tmp_path, WEBHOOK, {**WEBHOOK, "webhook": "https://other.example/"})
    assert caught.value.where.endswith("hooks[1].name")
    assert "already the name of hooks[0]" in caught.value.reason


def test_a_bad_hook_stops_every_command_with_exit_2(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path, hooks=[{**WEBHOOK, "on": "sometimes"}])
    result = Cli(sqlite_url, config)("run")
    assert result.exit_code == 2
    assert "hooks[0].on: 'sometimes' is not an event; known: new, updated" in result.stderr


def test_delivery_settings_come_from_the_delivery_table(tmp_path: Path) -> None:
    config = write_config(tmp_path, delivery={"max_attempts": 3, "run_budget": "5s"})
    settings = load_settings(config, env={"INGEST_DELIVERY_BACKOFF": "2s"})
    assert (settings.delivery.max_attempts, settings.delivery.run_budget) == (3, 5.0)
    assert settings.delivery.backoff == 2.0


def test_a_hook_wants_its_events_categories_and_sources(tmp_path: Path) -> None:
    settings = settings_with(
        tmp_path,
        {**WEBHOOK, "name": "all", "on": ["new", "updated"]},
        {**WEBHOOK, "name": "tech", "categories": ["TECH"]},
        {**WEBHOOK, "name": "by-id", "sources": [7]},
        {**WEBHOOK, "name": "by-url", "sources": ["https://Feeds.example/a"]},
    )
    route = router(settings.hooks)
    assert route is not None
    tech = a_post("1", "x", categories=("News", "Tech"))
    other = a_post("2", "y", categories=("News",))
    seven = a_state(7, url="https://x.example/seven")
    feeds = a_state(8, url="https://feeds.example/a")
    assert route(Change.NEW, tech, seven) == ["all", "tech", "by-id"]
    assert route(Change.NEW, other, feeds) == ["all", "by-url"]
    assert route(Change.UPDATED, tech, seven) == ["all"]
    assert router(()) is None


def test_delivery_ids_name_the_post_revision_and_hook() -> None:
    assert delivery_id(12, 3, "chat") == "12-3-chat"


@pytest.mark.parametrize(
    ("attempts", "wait"),
    [(1, 30.0), (2, 60.0), (3, 120.0), (7, 1920.0), (8, 3600.0), (9, 3600.0), (10, None)],
)
def test_retries_wait_twice_as_long_each_time_up_to_the_cap_then_give_up(
    attempts: int, wait: float | None
) -> None:
    settings = DeliverySettings(
        concurrency=8, per_hook=2, max_attempts=10, backoff=30, backoff_cap=3600, run_budget=30
    )
    assert retry_in(attempts, settings) == wait


def test_the_signature_is_the_hex_hmac_sha256_of_the_body() -> None:
    body = '{"title": "离职潮"}'.encode()
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert signature("s3cret", body) == f"sha256={expected}"
