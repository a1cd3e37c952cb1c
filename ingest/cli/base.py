"""What every ``ingest`` command shares: the global options, opening the store and settings,
and turning our errors into the documented exit codes (see ``ingest.cli.app``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from ingest.config import Settings, canonical_source_url, load_settings
from ingest.errors import ConfigError, IngestError, StoreError
from ingest.observe.logs import configure_logging
from ingest.types import StoredSource
from ingest.units import parse_moment, parse_until
from ingest.urls import redacted
from storage import Store, open_store

DEFAULT_DB = "sqlite:///ingest.db"
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUG = 70
"""sysexits.h's EX_SOFTWARE: ``ingest run`` met a bug in feed-ingest (see the log)."""
R = TypeVar("R")

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db", envvar="INGEST_DB", help=f"Store URL [default: {DEFAULT_DB}]", show_default=False
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="INGEST_CONFIG",
        help="Config file [default: ./ingest.toml if present, else the built-in one]",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
SinceOption = Annotated[
    datetime | None,
    typer.Option(
        "--since",
        parser=parse_moment,
        metavar="DATE",
        help="Only posts published at or after DATE (2024-06-01 or 2024-06-01T08:00; UTC "
        "unless an offset is given).",
    ),
]
UntilOption = Annotated[
    datetime | None,
    typer.Option(
        "--until",
        parser=parse_until,
        metavar="DATE",
        help="Only posts published at or before DATE (a date alone includes that whole day).",
    ),
]


class Context:
    """The global options, given before or after the command name (the latter wins)."""

    def __init__(self, db: str | None, config: Path | None) -> None:
        self.db = db
        self.config = config
        self.logging_configured = False

    def settings(self, config: Path | None) -> Settings:
        settings = load_settings(config or self.config)
        configure_logging(settings.log.level, settings.log.format)
        self.logging_configured = True
        return settings

    @contextmanager
    def store(self, db: str | None, *, migrate: bool = True) -> Iterator[Store]:
        if not self.logging_configured:
            # Opening may migrate, which logs: to stderr, never into a command's --json output.
            configure_logging()
            self.logging_configured = True
        store = open_store(db or self.db or DEFAULT_DB, migrate=migrate)
        try:
            yield store
        finally:
            store.close()

    def on_store(self, db: str | None, work: Callable[[Store], R], *, migrate: bool = True) -> R:
        """``work(store)`` on the store ``db`` names; errors become exit codes (``guarded``)."""

        def action() -> R:
            with self.store(db, migrate=migrate) as store:
                return work(store)

        return guarded(action)


def fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def find_source(store: Store, key: str) -> StoredSource | None:
    """The source a user means by ``key`` (``--feed``, ``feeds remove``): an id, a URL, or a
    path or URL as ``feeds add`` would store it (taken from the current folder)."""
    canonical: list[str] = []
    with contextlib.suppress(ValueError):
        canonical.append(canonical_source_url(key, Path.cwd()))
    return store.find_source(key, canonical)


def fail_no_source(key: str) -> NoReturn:
    """Exit 1: no source has the id or URL ``key`` (shown redacted, as every URL is)."""
    fail(f"no source {redacted(key)!r}; `ingest feeds list` shows them", EXIT_FAILED)


def guarded(action: Callable[[], R]) -> R:
    """Run ``action``, turning our errors into a message and the documented exit code."""
    try:
        return action()
    except (ConfigError, StoreError) as exc:
        fail(str(exc), EXIT_USAGE)
    except IngestError as exc:
        fail(str(exc), EXIT_FAILED)


def run_async(main: Coroutine[Any, Any, R]) -> R:
    """Run ``main`` to completion on uvloop where it is installed (not on Windows).

    uvloop's loop, transports and callbacks are native code: a pass over sources that answer
    304 spends most of its time in the loop and the HTTP stack, and runs ~12% faster on it.
    """
    try:
        import uvloop  # noqa: PLC0415  (optional: absent on Windows)
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def print_json(value: object) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2))
