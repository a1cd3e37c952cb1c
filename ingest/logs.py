"""Logging, configured once by the CLI: structlog for our events, stdlib loggers through the same
chain (httpx, apscheduler, sqlalchemy, alembic), human-readable on a terminal and JSON lines
otherwise. Logs go to stderr; stdout is kept for what a command prints as its result.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

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


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """Route structlog and stdlib logging to stderr at ``level``, as console text or JSON."""
    json_lines = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,  # structlog.testing.capture_logs needs fresh loggers
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *([structlog.processors.format_exc_info] if json_lines else []),
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name, quiet in QUIET_LIBRARIES.items():
        logging.getLogger(name).setLevel(max(quiet, root.level))
