"""What reaches the log: every event, ours and the libraries', with URL credentials redacted."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from ingest.observe.logs import configure_logging

URL = "http://user:s3cret@feeds.example/feed?token=t0ps3cret"
SHOWN = "http://user:***@feeds.example/feed?token=***"


@pytest.fixture
def logged(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    yield capsys
    logging.getLogger().handlers.clear()


def _log_everything() -> None:
    log = structlog.get_logger("ingest.test")
    log.warning("source_processed", url=URL, error=f"cannot reach {URL}", first=[URL], n=1)
    try:
        raise ValueError(f"bad answer from {URL}")
    except ValueError:
        log.exception("source_crashed", url=URL)
    logging.getLogger("httpx").warning("HTTP Request: GET %s", URL)


def test_json_lines_carry_no_credentials(logged: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")

    _log_everything()

    err = logged.readouterr().err
    assert "s3cret" not in err
    events = [json.loads(line) for line in err.splitlines()]
    assert [e["event"] for e in events] == [
        "source_processed",
        "source_crashed",
        f"HTTP Request: GET {SHOWN}",
    ]
    assert events[0]["url"] == SHOWN
    assert events[0]["error"] == f"cannot reach {SHOWN}"
    assert events[0]["first"] == [SHOWN]
    assert events[0]["n"] == 1
    assert f"ValueError: bad answer from {SHOWN}" in events[1]["exception"]


def test_console_lines_carry_no_credentials(logged: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "console")

    _log_everything()

    err = logged.readouterr().err
    assert "s3cret" not in err
    assert SHOWN in err
    assert f"ValueError: bad answer from {SHOWN}" in err
