"""The progress bar of ``ingest run`` on a terminal."""

from __future__ import annotations

import io
from collections import Counter

from rich.console import Console
from rich.progress import Progress, TextColumn

from ingest.cli.progress import PassProgress
from ingest.types import SourceOutcome, SourceStatus


def _outcome(status: SourceStatus) -> SourceOutcome:
    return SourceOutcome(
        source_id=1,
        source="https://example.org/feed",
        status=status,
        counts=Counter(),
        skipped=0,
        error=None,
        duration_s=0.1,
    )


def test_a_bug_is_not_counted_as_a_failed_source() -> None:
    screen = io.StringIO()
    bar = Progress(
        TextColumn("{task.fields[failed]} failed{task.fields[bugs]}"),
        console=Console(file=screen, force_terminal=True, width=80),
        auto_refresh=False,
    )
    progress = PassProgress(bar)
    with bar:
        progress.on_start(3)
        for status in (SourceStatus.OK, SourceStatus.ERROR, SourceStatus.BUG):
            progress.on_outcome(_outcome(status))

    assert (progress.failed, progress.bugs) == (1, 1)
    assert "1 failed, 1 hit a bug" in screen.getvalue()
