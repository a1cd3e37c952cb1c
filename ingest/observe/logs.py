"""Logging, configured once by the CLI: structlog for our events, stdlib loggers through the same
chain (httpx, apscheduler, sqlalchemy, alembic), human-readable on a terminal and JSON lines
otherwise. Logs go to stderr; stdout is kept for what a command prints as its result.

Every URL in every event is redacted on its way out (``redact_urls``), whoever logged it: no
call site has to remember that a source's URL may hold a password or a token.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any, TextIO

# structlog's dev module imports rich when it is installed (typer brings it along): a tenth of
# a second of every command, for tracebacks that are formatted as plain text here anyway (see
# configure_logging). rich is hidden from that one import; the progress bar imports it later.
_HIDE_RICH = "rich" not in sys.modules
if _HIDE_RICH:
    sys.modules["rich"] = None  # type: ignore[assignment]
try:
    import structlog
    from structlog.typing import EventDict
finally:
    if _HIDE_RICH:
        del sys.modules["rich"]

from ingest.urls import redact_text  # noqa: E402  (after structlog, see above)

QUIET_LIBRARIES = {
    "httpx": logging.WARNING,  # one INFO line per request floods a poller's log
    "httpcore": logging.WARNING,
    "alembic": logging.WARNING,  # storage.migrate logs its own one-line event instead
    "apscheduler": logging.WARNING,  # two INFO lines per tick otherwise
}


def follow_stderr(stream: TextIO | None = None) -> None:
    """Point the log handler at ``stream`` (default: the current ``sys.stderr``), e.g. while a
    progress bar has taken stderr over."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(stream or sys.stderr)


class _CurrentStderr:
    """Whatever ``sys.stderr`` is at the time of writing (a progress bar may have replaced it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _NamedLogger(structlog.WriteLogger):
    """structlog's direct writer, carrying the name ``get_logger(name)`` gave it."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__(_CurrentStderr())  # type: ignore[arg-type]
        self.name = name


def redact_urls(_logger: object, _method: str, event: EventDict) -> EventDict:
    """structlog processor: the event with the credentials of every URL in its values, the
    message and a formatted traceback included, redacted (``ingest.urls.redact_text``)."""
    return {key: _redacted(value) for key, value in event.items()}


def _redacted(value: object) -> object:
    """Strings redacted, containers walked; any other object as the text a renderer would
    have made of it (a URL object's text holds its password too), redacted."""
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _redacted(item) for key, item in value.items()}
    return redact_text(str(value))


def configure_logging(
    level: str = "info", fmt: str = "auto", *, terminal_level: str | None = None
) -> None:
    """Route structlog and stdlib logging to stderr at ``level``, as console text or JSON.

    ``terminal_level``, when given, raises the level while stderr is a terminal: there the
    screen belongs to the command's own output (``ingest run``'s progress bar and summary),
    and only warnings and errors interrupt it; a log stream (a file, a pipe, journald) still
    gets every event at ``level``.

    Our own events take structlog's direct path (filtered by level before any work, rendered
    and written: a poller logs one per source checked, so this is on the hot path); stdlib
    loggers' records are rendered by the same processors through a logging handler.
    """
    on_terminal = sys.stderr.isatty()
    json_lines = fmt == "json" or (fmt == "auto" and not on_terminal)
    if on_terminal and terminal_level is not None:
        level = max(level, terminal_level, key=lambda name: logging.getLevelName(name.upper()))
    stamp: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    # Tracebacks are formatted as plain text in both formats, so that they are redacted too
    # (a rich traceback shows local variables, source URLs among them).
    render: list[Any] = [structlog.processors.format_exc_info, redact_urls, renderer]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *stamp,
            structlog.stdlib.add_logger_name,
            *render,
        ],
        logger_factory=_NamedLogger,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=False,  # structlog.testing.capture_logs needs fresh loggers
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*stamp, structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name, quiet in QUIET_LIBRARIES.items():
        logging.getLogger(name).setLevel(max(quiet, root.level))
