"""What the commands print: results as text for people and as JSON for programs.

The JSON shapes are one vocabulary (``docs/cli.md``): a listing is an array of objects; a source
is always ``id``, ``url`` and ``name`` (its configured name; the feed's own is ``title``); times
are ISO 8601 UTC; counts are numbers named for what they count. Imported by the commands that
print these, never at start-up.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer

from ingest.cli.base import print_json, say_empty
from ingest.errors import ErrorKind
from ingest.types import (
    Change,
    DeliveryStatus,
    LeaseHolder,
    RunSummary,
    SourceOutcome,
    StoredPost,
)
from ingest.units import iso_utc
from ingest.urls import redact_text, redacted

if TYPE_CHECKING:
    from storage import SourceHealth, StoreStats


def posts(found: list[StoredPost], *, as_json: bool, empty: str) -> None:
    """Posts as a table of id, date and title, or a JSON array; ``empty`` is said at a
    terminal when there are none."""
    if as_json:
        print_json([post(p) for p in found])
        return
    if not found:
        say_empty(empty)
    for stored in found:
        date = stored.post.published.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        typer.echo(f"{stored.id:>6}  {date}  {stored.post.title}")


def post(stored: StoredPost) -> dict[str, object]:
    from ingest.publish.render import post_json  # noqa: PLC0415  (not at start-up: YAML)

    return post_json(
        stored.post,
        post_id=stored.id,
        source=redacted(stored.source or ""),
        revision=stored.revision,
    )


def summary_text(summary: RunSummary) -> None:
    if summary.interrupted:
        typer.echo(
            f"interrupted by {summary.interrupted.name}: the sources not checked are left for "
            "the next run"
        )
    for holder in summary.held_elsewhere:
        typer.echo(f"skipped: {_holder_line(holder)}")
    for source in summary.retired:
        typer.echo(f"retired: {redacted(source.spec.url)}: {source.disabled_reason}")
    for source in summary.revived:
        typer.echo(f"polled again: {redacted(source.spec.url)}: the config lists it again")
    if not summary.outcomes:
        if not summary.held_elsewhere and not summary.interrupted:
            typer.echo("nothing is due; `ingest run --all` checks every source now")
        return
    for outcome in summary.failed:
        typer.echo(f"failed: {redacted(outcome.source)}: {outcome.error}")
    for outcome in summary.bugs:
        typer.echo(
            f"bug: {redacted(outcome.source)}: {outcome.error}; not the feed's fault, a bug in "
            "feed-ingest (the traceback is in the log)"
        )
    ok, lost, bugs = len(summary.succeeded), len(summary.lost), len(summary.bugs)
    taken = f", {lost} taken over by another process" if lost else ""
    buggy = f", {bugs} hit a bug in feed-ingest" if bugs else ""
    typer.echo(f"sources: {ok} ok, {len(summary.failed)} failed{buggy}{taken}")
    counts = ", ".join(f"{summary.total(change)} {change.value}" for change in Change)
    typer.echo(f"posts: {counts}, {_skipped(summary)} skipped")
    if summary.filtered:
        typer.echo(f"filtered: {summary.filtered} entries kept out by keep/block rules")


def deliveries_text(summary: RunSummary) -> None:
    """What the hooks were told at the end of the run, each delivery by its last attempt; a
    hook's failure is no source's, so it never changes the exit status (``ingest stats``
    keeps the details)."""
    last = summary.last_attempts
    for outcome in last:
        if outcome.error is not None:
            then = "given up" if outcome.status is DeliveryStatus.FAILED else "to be retried"
            typer.echo(f"hook {outcome.hook}: {outcome.delivery_id}: {outcome.error} ({then})")
    if not last and not summary.deliveries_pending:
        return
    tally = Counter(outcome.status for outcome in last)
    typer.echo(
        f"hooks: {tally[DeliveryStatus.DELIVERED]} delivered, "
        f"{tally[DeliveryStatus.RETRY]} to be retried, {tally[DeliveryStatus.FAILED]} given up; "
        f"{summary.deliveries_pending} pending"
    )


def summary_json(summary: RunSummary) -> dict[str, object]:
    """The run summary as one object: totals, then every source checked."""
    return {
        "sources": {
            "ok": len(summary.succeeded),
            "failed": len(summary.failed),
            "bugs": len(summary.bugs),
            "taken_over": len(summary.lost),
        },
        "posts": {
            **{change.value: summary.total(change) for change in Change},
            "skipped": _skipped(summary),
            "filtered": summary.filtered,
        },
        "checked": [_outcome(o) for o in summary.outcomes],
        "held_elsewhere": [_holder(h) for h in summary.held_elsewhere],
        "retired": [
            {"id": s.id, "url": redacted(s.spec.url), "reason": s.disabled_reason}
            for s in summary.retired
        ],
        "revived": [{"id": s.id, "url": redacted(s.spec.url)} for s in summary.revived],
        "hooks": _deliveries_json(summary),
        "interrupted": summary.interrupted.name if summary.interrupted else None,
    }


def _deliveries_json(summary: RunSummary) -> dict[str, object]:
    last = summary.last_attempts
    tally = Counter(outcome.status for outcome in last)
    return {
        "delivered": tally[DeliveryStatus.DELIVERED],
        "to_retry": tally[DeliveryStatus.RETRY],
        "given_up": tally[DeliveryStatus.FAILED],
        "pending": summary.deliveries_pending,
        "errors": [
            {"hook": o.hook, "delivery_id": o.delivery_id, "error": o.error}
            for o in last
            if o.error is not None
        ],
    }


def _skipped(summary: RunSummary) -> int:
    return sum(o.skipped for o in summary.outcomes)


def _outcome(outcome: SourceOutcome) -> dict[str, object]:
    return {
        "id": outcome.source_id,
        "url": redacted(outcome.source),
        "status": outcome.status.value,
        "posts": {change.value: outcome.counts.get(change, 0) for change in Change},
        "skipped": outcome.skipped,
        "filtered": outcome.filtered,
        "error": outcome.error,
        "error_kind": outcome.error_kind.value if outcome.error_kind else None,
        "duration_s": round(outcome.duration_s, 3),
        "taken_over": outcome.lease_lost,
    }


def _holder(holder: LeaseHolder) -> dict[str, object]:
    return {"owner": holder.owner, "source_count": holder.sources, "until": iso_utc(holder.until)}


def stats_text(report: StoreStats) -> None:
    typer.echo(
        f"{'ID':>4}  {'STATUS':<12} {'LAST CHECK':<16}  {'NEXT CHECK':<16}  ERRORS  POSTS  SOURCE"
    )
    for source in report.sources:
        status = source.status if source.enabled else "disabled"
        typer.echo(
            f"{source.id:>4}  {status:<12} {_when(source.last_checked_at):<16}  "
            f"{_when(source.next_check_at if source.enabled else None):<16}  "
            f"{source.error_count:>6}  {source.posts:>5}  {redacted(source.url)}"
        )
        problem = source.disabled_reason or source.last_error
        if problem:
            # Redacted again: a store written by an older version may hold it unredacted.
            typer.echo(f"{'':>6}{_problem_label(source)}: {redact_text(problem)}")
        if source.filtered:
            typer.echo(f"{'':>6}filtered: {source.filtered} entries of its last document")
        if source.lease_owner:
            typer.echo(
                f"{'':>6}being checked by {source.lease_owner} "
                f"(lease until {_clock_time(source.lease_until)})"
            )
    typer.echo(
        f"{len(report.sources)} sources ({report.failing} failing, {report.disabled} disabled), "
        f"{report.posts} posts, {report.sightings} sightings; schema {report.schema_version}"
    )
    for holder in report.leases:
        typer.echo(_holder_line(holder))
    for hook in report.hooks:
        due = f", next due {_when(hook.next_attempt_at)}" if hook.pending else ""
        typer.echo(
            f"hook {hook.hook}: {hook.pending} pending, {hook.delivered} delivered, "
            f"{hook.failed} failed{due}"
        )
        if hook.last_error:
            typer.echo(f"{'':>6}last error ({_when(hook.last_error_at)}): {hook.last_error}")


def stats_json(report: StoreStats) -> dict[str, object]:
    def plain(value: object) -> object:
        if isinstance(value, str):
            return redact_text(value)  # errors kept by older versions were not redacted
        return iso_utc(value) if isinstance(value, datetime) else value

    return {
        "sources": [
            {k: plain(v) for k, v in (asdict(s) | {"url": redacted(s.url)}).items()}
            for s in report.sources
        ],
        "totals": {
            "sources": len(report.sources),
            "failing": report.failing,
            "disabled": report.disabled,
            "posts": report.posts,
            "sightings": report.sightings,
            "filtered": sum(s.filtered for s in report.sources),
        },
        "leases": [_holder(h) for h in report.leases],
        "hooks": [{k: plain(v) for k, v in asdict(hook).items()} for hook in report.hooks],
        "schema_version": report.schema_version,
    }


def _problem_label(source: SourceHealth) -> str:
    """What ``stats`` calls a source's problem: a bug is never shown as the source's error."""
    if not source.enabled:
        return "disabled"
    label = "bug in feed-ingest" if source.last_error_kind is ErrorKind.INTERNAL else "last error"
    return f"{label} ({source.last_error_kind})" if source.last_error_kind else label


def _holder_line(holder: LeaseHolder) -> str:
    sources = "1 source" if holder.sources == 1 else f"{holder.sources} sources"
    return f"{sources} leased to {holder.owner} until {_clock_time(holder.until)}"


def _clock_time(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%H:%M:%S UTC") if moment else "-"


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if moment else "-"
