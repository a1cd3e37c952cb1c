"""The ``ingest`` command line (typer): the edge where settings are read and logging configured.

Exit codes: 0 success; 1 when a source failed (the others are still stored) or a requested
thing does not exist; 2 on bad usage, bad config or an unusable store; 70 (EX_SOFTWARE) when
``ingest run`` met a bug in feed-ingest, whatever else failed.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from ingest.cli.base import (
    EXIT_BUG,
    EXIT_FAILED,
    EXIT_USAGE,
    ConfigOption,
    Context,
    DbOption,
    JsonOption,
    SinceOption,
    UntilOption,
    fail,
    fail_no_source,
    find_source,
    guarded,
    print_json,
    run_async,
)
from ingest.cli.feeds import feeds_app, sources_to_check
from ingest.cli.parse import parse
from ingest.cli.progress import pass_progress
from ingest.config import SETTINGS, display_value
from ingest.errors import ErrorKind
from ingest.publish.export import Layout, export_posts
from ingest.publish.render import iso_utc, post_json, render_post
from ingest.types import Change, DeliveryStatus, LeaseHolder, RunSummary, StoredPost
from ingest.urls import redact_text, redacted
from scheduler.daemon import Daemon
from scheduler.driver import run_once
from storage import PostFilter, SourceHealth, Store, StoreStats

app = typer.Typer(
    help="Poll RSS, Atom and JSON Feed sources and keep every entry once, as a front-matter post.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
entries_app = typer.Typer(help="Read stored posts.", no_args_is_help=True)
db_app = typer.Typer(help="Look after the store itself.", no_args_is_help=True)
app.add_typer(entries_app, name="entries")
config_app = typer.Typer(help="Inspect the settings.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(feeds_app, name="feeds")
app.add_typer(db_app, name="db")
app.command()(parse)


@app.callback()
def main_options(ctx: typer.Context, db: DbOption = None, config: ConfigOption = None) -> None:
    ctx.obj = Context(db, config)


@app.command()
def run(
    ctx: typer.Context,
    keys: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[ID|URL]...",
            help="Check just these sources now, due or not, and leave the others alone.",
            show_default=False,
        ),
    ] = None,
    all_sources: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Check every enabled source now, not only those due (Retry-After and "
            "410 Gone are still respected).",
        ),
    ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Check the sources that are due (or those named), store their posts, print a summary."""
    options: Context = ctx.obj

    def action() -> RunSummary:
        settings = options.settings(config)
        with options.store(db) as store, pass_progress() as progress:
            return run_async(
                run_once(
                    store,
                    settings,
                    force=all_sources,
                    only=sources_to_check(keys) if keys else None,
                    on_start=progress.on_start,
                    on_outcome=progress.on_outcome,
                )
            )

    summary = guarded(action)
    _print_summary(summary)
    _print_deliveries(summary)
    if summary.interrupted:
        raise typer.Exit(128 + summary.interrupted)
    if summary.bugs:
        raise typer.Exit(EXIT_BUG)
    if summary.failed:
        raise typer.Exit(EXIT_FAILED)


def _print_summary(summary: RunSummary) -> None:
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
    skipped = sum(o.skipped for o in summary.outcomes)
    typer.echo(f"posts: {counts}, {skipped} skipped")


def _print_deliveries(summary: RunSummary) -> None:
    """What the hooks were told at the end of the run, each delivery by its last attempt; a
    hook's failure is no source's, so it never changes the exit status (``ingest stats``
    keeps the details)."""
    last = {outcome.delivery_id: outcome for outcome in summary.deliveries}
    for outcome in last.values():
        if outcome.error is not None:
            then = "given up" if outcome.status is DeliveryStatus.FAILED else "to be retried"
            typer.echo(f"hook {outcome.hook}: {outcome.delivery_id}: {outcome.error} ({then})")
    if not last and not summary.deliveries_pending:
        return
    tally = Counter(outcome.status for outcome in last.values())
    typer.echo(
        f"hooks: {tally[DeliveryStatus.DELIVERED]} delivered, "
        f"{tally[DeliveryStatus.RETRY]} to be retried, {tally[DeliveryStatus.FAILED]} given up; "
        f"{summary.deliveries_pending} pending"
    )


@app.command()
def serve(ctx: typer.Context, db: DbOption = None, config: ConfigOption = None) -> None:
    """Run the daemon: check sources as they come due until SIGTERM or SIGINT.

    Serves /healthz and /metrics on [serve] port (default 8080).
    """
    options: Context = ctx.obj

    def action() -> None:
        settings = options.settings(config)
        with options.store(db) as store:
            run_async(Daemon(store, settings).run())

    guarded(action)


@app.command()
def healthcheck(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Ask the local daemon's /healthz; exit 0 when healthy (the container's HEALTHCHECK)."""
    options: Context = ctx.obj
    settings = guarded(lambda: options.settings(config))
    url = _healthz_url(settings.serve.host, settings.serve.port)
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            typer.echo(response.read().decode().strip())
    except urllib.error.HTTPError as exc:
        fail(f"{url}: {exc.code} {exc.read().decode().strip()}", EXIT_FAILED)
    except (urllib.error.URLError, OSError) as exc:
        fail(f"{url}: no answer ({getattr(exc, 'reason', exc)})", EXIT_FAILED)


_EVERY_ADDRESS = frozenset({"0.0.0.0", "::"})
"""``[serve] host`` values that listen on every address, loopback included."""


def _healthz_url(host: str, port: int) -> str:
    """Where the daemon listening on ``host`` answers: loopback when it listens everywhere,
    else that very address (an IPv6 one in brackets)."""
    if host in _EVERY_ADDRESS:
        host = "127.0.0.1"
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/healthz"


@config_app.command("show")
def config_show(
    ctx: typer.Context, as_json: JsonOption = False, config: ConfigOption = None
) -> None:
    """The effective settings, and where each one came from."""
    options: Context = ctx.obj
    settings = guarded(lambda: options.settings(config))
    rows = [
        (s.key, display_value(s, settings.value(s.key)), settings.origins[s.key]) for s in SETTINGS
    ]
    sources = [redacted(spec.url) for spec in settings.sources]
    if as_json:
        document = {
            "settings": {key: {"value": value, "origin": origin} for key, value, origin in rows},
            "sources": {"value": sources, "origin": settings.origins["sources"]},
            "config_file": str(settings.config_path) if settings.config_path else None,
        }
        typer.echo(json.dumps(document, ensure_ascii=False, indent=2))
        return
    width = max(len(key) for key, _, _ in rows)
    for key, value, origin in rows:
        typer.echo(f"{key:<{width}} = {json.dumps(value, ensure_ascii=False):<28} # {origin}")
    typer.echo(f"sources ({settings.origins['sources']}):")
    for url in sources:
        typer.echo(f"  {url}")


@entries_app.command("list")
def entries_list(
    ctx: typer.Context,
    *,
    as_json: JsonOption = False,
    source_key: Annotated[
        str | None,
        typer.Option("--feed", metavar="ID_OR_URL", help="Only posts this source served."),
    ] = None,
    category: Annotated[
        str | None, typer.Option("--category", help="Only posts with this category.")
    ] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N posts.")] = None,
    db: DbOption = None,
) -> None:
    """Stored posts, newest first by their publish date (UTC); filters combine."""
    options: Context = ctx.obj
    if since and until and since > until:
        fail("--since is after --until: no post can match", EXIT_USAGE)

    def action() -> list[StoredPost]:
        with options.store(db) as store:
            source_id = None
            if source_key is not None:
                source = find_source(store, source_key)
                if source is None:
                    fail_no_source(source_key)
                source_id = source.id
            where = PostFilter(source_id=source_id, category=category, since=since, until=until)
            return store.list_posts(limit=limit, where=where)

    _print_posts(guarded(action), as_json)


@entries_app.command("search")
def entries_search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(metavar="QUERY", help='Words or "a phrase".')],
    as_json: JsonOption = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most N posts.")] = 20,
    db: DbOption = None,
) -> None:
    """Posts whose title or text holds every word of QUERY, best match first.

    Chinese, Japanese and Korean work without spaces: `ingest entries search 离职潮`.
    """
    options: Context = ctx.obj
    if not query.strip():
        fail("QUERY is empty: give a word or phrase to look for", EXIT_USAGE)

    _print_posts(
        options.on_store(db, lambda store: store.search_posts(query, limit=limit)), as_json
    )


def _print_posts(posts: list[StoredPost], as_json: bool) -> None:
    if as_json:
        print_json([_json(p) for p in posts])
        return
    for stored in posts:
        date = stored.post.published.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        typer.echo(f"{stored.id:>6}  {date}  {stored.post.title}")


@entries_app.command("show")
def entries_show(
    ctx: typer.Context,
    post_id: Annotated[int, typer.Argument(metavar="ID", help="Post id, from `entries list`.")],
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """One post as its front-matter file."""
    options: Context = ctx.obj

    stored = options.on_store(db, lambda store: store.get_post(post_id))
    if stored is None:
        fail(f"no post with id {post_id}; `ingest entries list` shows the ids", EXIT_FAILED)
    if as_json:
        print_json(_json(stored))
    else:
        typer.echo(render_post(stored.post), nl=False)


@app.command("export")
def export(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="Folder to write posts into.")],
    layout: Annotated[Layout, typer.Option("--layout", help="File layout.")] = Layout.HEXO,
    since: SinceOption = None,
    db: DbOption = None,
) -> None:
    """Write every post as a front-matter file; unchanged files are left alone."""
    options: Context = ctx.obj

    def action() -> str:
        with options.store(db) as store:
            summary = export_posts(store.iter_posts(since=since), directory, layout)
        return (
            f"{summary.written} written, {summary.unchanged} unchanged, "
            f"{summary.removed} old copies removed in {directory}"
        )

    typer.echo(guarded(action))


@app.command()
def stats(ctx: typer.Context, as_json: JsonOption = False, db: DbOption = None) -> None:
    """Per source: status, last and next check, errors, posts; store totals; per hook:
    deliveries pending, delivered and failed, and the last error."""
    options: Context = ctx.obj

    report = options.on_store(db, Store.stats)
    if as_json:
        print_json(_stats_json(report))
        return
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


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, as_json: JsonOption = False, db: DbOption = None) -> None:
    """Bring the store's schema to the newest version (every command also does it on open)."""
    options: Context = ctx.obj

    before, after = options.on_store(db, Store.migrate, migrate=False)
    if as_json:
        print_json({"from": before, "to": after, "changed": before != after})
    elif before == after:
        typer.echo(f"the store is at the newest schema ({after}); nothing to do")
    else:
        typer.echo(f"the store's schema went from {before or 'empty'} to {after}")


@db_app.command("index")
def db_index(ctx: typer.Context, as_json: JsonOption = False, db: DbOption = None) -> None:
    """Index every post waiting for the search index (searches and the daemon also do it)."""
    options: Context = ctx.obj

    indexed = options.on_store(db, lambda store: store.index_backlog())
    if as_json:
        print_json({"indexed": indexed})
    else:
        typer.echo(f"{indexed} posts indexed; the search index is up to date")


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


def _stats_json(report: StoreStats) -> dict[str, object]:
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
        },
        "leases": [
            {"owner": h.owner, "sources": h.sources, "until": iso_utc(h.until)}
            for h in report.leases
        ],
        "hooks": [{k: plain(v) for k, v in asdict(hook).items()} for hook in report.hooks],
        "schema_version": report.schema_version,
    }


def _json(stored: StoredPost) -> dict[str, object]:
    return post_json(
        stored.post,
        post_id=stored.id,
        source=redacted(stored.source or ""),
        revision=stored.revision,
    )


def main() -> None:
    app()
