"""A progress bar for long ``ingest run`` passes on a terminal (rich, imported only to draw it).

Off a terminal nothing is drawn: the per-source log lines and the summary are the record. While
the bar is live, log lines are printed above it instead of through it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ingest.observe.logs import follow_stderr

if TYPE_CHECKING:
    from rich.progress import Progress

    from ingest.types import SourceOutcome


@dataclass
class PassProgress:
    """The callbacks ``run_once`` takes; no-ops when there is no bar."""

    bar: Progress | None = None
    task: Any = None
    failed: int = 0
    bugs: int = 0
    """Sources that met a bug in feed-ingest: shown apart, never as failed sources."""

    def on_start(self, total: int) -> None:
        if self.bar is not None:
            self.task = self.bar.add_task("checking sources", total=total, failed=0, bugs="")

    def on_outcome(self, outcome: SourceOutcome) -> None:
        self.bugs += outcome.is_bug
        self.failed += outcome.is_failure
        if self.bar is not None and self.task is not None:
            bugs = f", {self.bugs} hit a bug" if self.bugs else ""
            self.bar.update(self.task, advance=1, failed=self.failed, bugs=bugs)


@contextmanager
def pass_progress() -> Iterator[PassProgress]:
    if not sys.stderr.isatty():
        yield PassProgress()
        return
    # rich is imported only where a bar is drawn
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn  # noqa: PLC0415

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed{task.fields[bugs]}"),
        console=Console(stderr=True),
        transient=True,
        redirect_stderr=True,
    )
    with bar:
        follow_stderr()
        try:
            yield PassProgress(bar)
        finally:
            follow_stderr(sys.__stderr__)
