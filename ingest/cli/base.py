"""What every ``ingest`` command shares: the global options, the settings and the store, and
turning errors into one line and the documented exit code (see ``ingest.cli.app``).

Every command takes ``--db`` and ``--config`` before or after its name (the latter wins), loads
the settings (so an unknown ``INGEST_*`` variable or a missing config file is refused by every
command, and ``[log] level`` applies to every command) and opens the store only when it needs
it. A command that only reads never creates a store: it says where it looked instead.

Kept light on purpose: ``ingest --help`` and a ``run`` with nothing due import only what they
use, so the settings, the store and logging are imported where they are first needed.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from typer.core import TyperGroup

from ingest.errors import ConfigError, IngestError, NoStoreError, StoreError

if TYPE_CHECKING:
    from ingest.config import Settings
    from ingest.types import IdleMark, StoredSource
    from storage import Store

DEFAULT_DB = "sqlite:///ingest.db"
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUG = 70
"""sysexits.h's EX_SOFTWARE: ``ingest run`` met a bug in feed-ingest (see the log)."""
R = TypeVar("R")


def _parser(parse: Callable[[str], R]) -> Callable[[str], R]:
    """``parse`` as an option parser: its ValueError becomes a usage error in our own words
    (the option's name is added where the error is shown)."""

    def parse_option(value: str) -> R:
        try:
            return parse(value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc

    return parse_option


def _whole_number(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None
    if number < 1:
        raise ValueError(f"{number} is below 1")
    return number


def _moment(text: str) -> datetime:
    from ingest.units import parse_moment  # noqa: PLC0415  (parsed only when given)

    return parse_moment(text)


def _until(text: str) -> datetime:
    from ingest.units import parse_until  # noqa: PLC0415  (parsed only when given)

    return parse_until(text)


positive_int = _parser(_whole_number)
"""A count given on the command line (``--limit``, an id): a whole number from 1."""

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="INGEST_DB",
        metavar="URL",
        help=f"Store: a database URL or the path of a SQLite file [default: {DEFAULT_DB}]",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="INGEST_CONFIG",
        metavar="PATH",
        help="Config file [default: ./ingest.toml if present, else the built-in one]",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
LimitOption = Annotated[
    int | None,
    typer.Option("--limit", metavar="N", parser=positive_int, help="At most N posts."),
]
SinceOption = Annotated[
    datetime | None,
    typer.Option(
        "--since",
        parser=_parser(_moment),
        metavar="DATE",
        help="Only posts published at or after DATE (2024-06-01 or 2024-06-01T08:00; UTC "
        "unless an offset is given).",
    ),
]
UntilOption = Annotated[
    datetime | None,
    typer.Option(
        "--until",
        parser=_parser(_until),
        metavar="DATE",
        help="Only posts published at or before DATE (a date alone includes that whole day).",
    ),
]


class Context:
    """The global options of one command line, given before or after the command name (the
    latter wins), and what is made of them: the settings (loaded once) and the store."""

    def __init__(self, db: str | None, config: Path | None, *, verbose: bool) -> None:
        self.db = db
        self.config = config
        self.verbose = verbose
        self.loud = False
        """Whether info logs reach a terminal without ``-v`` (the daemon: its log is its
        output)."""
        self._settings: Settings | None = None

    def use(self, db: str | None, config: Path | None) -> Context:
        """The options given after the command name, which win over those before it."""
        self.db = db or self.db
        self.config = config or self.config
        return self

    def settings(self) -> Settings:
        """The settings, read once; logging is configured from them. ConfigError (exit 2) for
        a missing or bad config file and for any unknown or invalid ``INGEST_*`` variable."""
        if self._settings is None:
            from ingest.config import load_settings  # noqa: PLC0415  (see the module docstring)
            from ingest.observe.logs import configure_logging  # noqa: PLC0415

            self._settings = load_settings(self.config)
            log = self._settings.log
            configure_logging(log.level, log.format, terminal_level=self._terminal_level())
        return self._settings

    def _terminal_level(self) -> str | None:
        """On a terminal, info logs are shown only with ``-v`` (or by ``serve``): the screen is
        for the command's own output; a log stream (not a terminal) gets them all."""
        return None if self.verbose or self.loud else "warning"

    @property
    def db_url(self) -> str:
        """The store's URL: ``--db`` (or ``INGEST_DB``); a plain path is a SQLite file."""
        db = self.db or DEFAULT_DB
        return db if "://" in db else f"sqlite:///{db}"

    def idle_mark(self) -> IdleMark | None:
        """The store's idle mark when it says a pass with these settings has nothing to do
        now (``scheduler.idle``), else None: answered without loading the store's ORM."""
        from scheduler.idle import fingerprint, is_idle  # noqa: PLC0415
        from storage import read_idle_mark  # noqa: PLC0415

        mark = read_idle_mark(self.db_url)
        now = datetime.now(UTC)
        return mark if is_idle(mark, fingerprint(self.settings()), now) else None

    @contextmanager
    def store(self, *, create: bool = False, migrate: bool = True) -> Iterator[Store]:
        """The store, opened after the settings are read. Only ``create`` makes a new one; a
        command that reads fails with NoStoreError (exit 1) where there is none."""
        self.settings()
        from storage import open_store  # noqa: PLC0415  (see the module docstring)

        store = open_store(self.db_url, migrate=migrate, create=create)
        try:
            yield store
        finally:
            store.close()

    def on_store(
        self, work: Callable[[Store], R], *, create: bool = False, migrate: bool = True
    ) -> R:
        """``work(store)`` on the store; errors become exit codes (``guarded``)."""

        def action() -> R:
            with self.store(create=create, migrate=migrate) as store:
                return work(store)

        return guarded(action)


def session(ctx: typer.Context, db: str | None, config: Path | None) -> Context:
    """The command's ``Context``, with the options given after its name applied and the
    settings read: the first thing every command does, so a bad config file or ``INGEST_*``
    variable is refused before anything else happens."""
    options: Context = ctx.obj
    guarded(options.use(db, config).settings)
    return options


class CommandError(typer.TyperException):
    """A command's failure: shown as one line (or JSON) on stderr, exit ``exit_code``."""

    def __init__(self, message: str, exit_code: int, kind: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.kind = kind


def fail(message: str, code: int, kind: str | None = None) -> NoReturn:
    """Stop the command: ``message`` on stderr as ``error: ...`` (JSON under ``--json``)."""
    raise CommandError(message, code, kind or _KINDS.get(code, "failed"))


_KINDS = {EXIT_FAILED: "failed", EXIT_USAGE: "usage", EXIT_BUG: "bug"}


def find_source(store: Store, key: str) -> StoredSource | None:
    """The source a user means by ``key`` (``--feed``, ``feeds remove``): an id, a URL, or a
    path or URL as ``feeds add`` would store it (taken from the current folder)."""
    from ingest.config import canonical_source_url  # noqa: PLC0415

    canonical: list[str] = []
    with contextlib.suppress(ValueError):
        canonical.append(canonical_source_url(key, Path.cwd()))
    return store.find_source(key, canonical)


def no_source(key: str) -> str:
    """What is said when no source has the id or URL ``key`` (shown redacted, as every URL is)."""
    from ingest.urls import redacted  # noqa: PLC0415

    return f"no source {redacted(key)!r}; `ingest feeds list` shows them"


def fail_no_source(key: str) -> NoReturn:
    """Exit 1: no source has the id or URL ``key``."""
    fail(no_source(key), EXIT_FAILED, "not_found")


def source_id_of(store: Store, key: str | None) -> int | None:
    """The id of the source ``key`` (an id or URL) names, None for no key; exit 1 naming the
    key when no source has it."""
    if key is None:
        return None
    source = find_source(store, key)
    if source is None:
        fail_no_source(key)
    return source.id


def guarded(action: Callable[[], R]) -> R:
    """Run ``action``, turning our errors into a message and the documented exit code."""
    try:
        return action()
    except NoStoreError as exc:
        fail(str(exc), EXIT_FAILED, "no_store")
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE, "config")
    except StoreError as exc:
        fail(str(exc), EXIT_USAGE, "store")
    except IngestError as exc:
        fail(str(exc), EXIT_FAILED)


def run_async(main: Coroutine[Any, Any, R]) -> R:
    """Run ``main`` to completion on uvloop where it is installed (not on Windows).

    uvloop's loop, transports and callbacks are native code: a pass over sources that answer
    304 spends most of its time in the loop and the HTTP stack, and runs ~12% faster on it.
    """
    import asyncio  # noqa: PLC0415  (only the commands that fetch need an event loop)

    try:
        import uvloop  # noqa: PLC0415  (optional: absent on Windows)
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def print_json(value: object) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2))


def say_empty(what: str) -> None:
    """Tell a person at a terminal that a listing came out empty (on stderr, so that stdout
    stays the result); a script reading stdout gets the empty result alone."""
    if sys.stdout.isatty():
        typer.echo(what, err=True)


class IngestGroup(TyperGroup):
    """The ``ingest`` group: every error, click's usage errors and ours alike, leaves as one
    line on stderr, ``error: ...``, or under ``--json`` as one JSON object
    ``{"error": message, "kind": kind, "exit_code": code}``, with its exit code."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        words = list(sys.argv[1:] if args is None else args)
        try:
            code = super().main(words, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            code = _report("aborted", EXIT_FAILED, "aborted", words)
        except typer.TyperException as exc:
            code = _report_exception(exc, words)
        sys.exit(code if isinstance(code, int) else 0)


def _report_exception(exc: typer.TyperException, words: list[str]) -> int:
    from typer._click.exceptions import NoArgsIsHelpError, UsageError  # noqa: PLC0415

    if isinstance(exc, NoArgsIsHelpError):
        exc.show()  # the help text itself
        return exc.exit_code
    if isinstance(exc, CommandError):
        return _report(exc.message, exc.exit_code, exc.kind, words)
    if isinstance(exc, UsageError):
        return _report(_usage_line(exc), exc.exit_code, "usage", words)
    return _report(exc.format_message(), exc.exit_code, "failed", words)


def _usage_line(exc: Any) -> str:
    """A usage error as ``--option: reason; see `ingest cmd --help```, in one line."""
    param = getattr(exc, "param", None)
    if param is not None:
        hint = param.get_error_hint().strip("'\"")
        message = f"{hint}: {exc.message}" if exc.message else exc.format_message()
    else:
        message = exc.format_message()
    message = " ".join(message.split())
    first, rest = message[:1], message[1:]
    where = f"; see `{exc.ctx.command_path} --help`" if exc.ctx is not None else ""
    return f"{first.lower() if rest[:1].islower() else first}{rest}{where}"


def _report(message: str, code: int, kind: str, words: list[str]) -> int:
    options = words[: words.index("--")] if "--" in words else words
    if "--json" in options:
        document = {"error": message, "kind": kind, "exit_code": code}
        typer.echo(json.dumps(document, ensure_ascii=False), err=True)
    else:
        typer.echo(f"error: {message}", err=True)
    return code
