"""The ``ingest`` command line (typer): the edge where settings are read and logging configured.

Exit codes: 0 success; 1 when a source failed (the others are still stored), a requested thing
does not exist, or a command that reads found no store; 2 on bad usage, bad config or an
unusable store; 70 (EX_SOFTWARE) when ``ingest run`` met a bug in feed-ingest, whatever else
failed. ``docs/cli.md`` documents every command, these codes and the ``--json`` shapes.

Each command imports what it uses inside its function: ``ingest --help`` loads no store, no
HTTP client and no daemon, and a ``run`` with nothing due loads neither the daemon nor
prometheus-client.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ingest.cli.base import (
    EXIT_BUG,
    EXIT_FAILED,
    EXIT_USAGE,
    ConfigOption,
    Context,
    DbOption,
    IngestGroup,
    JsonOption,
    LimitOption,
    SinceOption,
    UntilOption,
    fail,
    guarded,
    positive_int,
    print_json,
    run_async,
    session,
    source_id_of,
)
from ingest.cli.feedout import (
    CategoryOption,
    FeedLimitOption,
    FormatOption,
    SourceOption,
    TitleOption,
    UrlOption,
    export_feed,
    refuse_feed_options_without_format,
)
from ingest.cli.feeds import feeds_app
from ingest.cli.parse import parse

if TYPE_CHECKING:
    from ingest.types import RunSummary, StoredPost

app = typer.Typer(
    cls=IngestGroup,
    help="Poll RSS, Atom and JSON Feed sources and keep every entry once, as a front-matter post.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help text is shown as written: "[serve] port" is not markup
)
entries_app = typer.Typer(help="Read stored posts.", no_args_is_help=True, rich_markup_mode=None)
db_app = typer.Typer(help="Look after the store itself.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the settings.", no_args_is_help=True)
app.add_typer(entries_app, name="entries")
app.add_typer(config_app, name="config")
app.add_typer(feeds_app, name="feeds")
app.add_typer(db_app, name="db")
app.command()(parse)

VerboseOption = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        help="Show info log lines on a terminal too (off a terminal they are always written).",
    ),
]


def _show_version(value: bool) -> None:
    if value:
        from ingest import __version__  # noqa: PLC0415

        typer.echo(f"feed-ingest {__version__}")
        raise typer.Exit


@app.callback()
def main_options(
    ctx: typer.Context,
    db: DbOption = None,
    config: ConfigOption = None,
    verbose: VerboseOption = False,
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    ctx.obj = Context(db, config, verbose=verbose)


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
    *,
    all_sources: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Check every enabled source now, not only those due (Retry-After and "
            "410 Gone are still respected).",
        ),
    ] = False,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Check the sources that are due (or those named), store their posts, print a summary."""
    ctx.obj.verbose = ctx.obj.verbose or verbose  # before the settings configure logging
    options = session(ctx, db, config)

    def action() -> RunSummary:
        from ingest.types import RunSummary  # noqa: PLC0415

        if not keys and not all_sources and (mark := options.idle_mark()):
            return RunSummary(deliveries_pending=mark.deliveries_pending)  # nothing is due

        from ingest.cli.feeds import sources_to_check  # noqa: PLC0415
        from ingest.cli.progress import pass_progress  # noqa: PLC0415
        from scheduler.driver import run_once  # noqa: PLC0415

        settings = options.settings()
        with options.store(create=True) as store, pass_progress() as progress:
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
    from ingest.cli import show  # noqa: PLC0415

    if as_json:
        print_json(show.summary_json(summary))
    else:
        show.summary_text(summary)
        show.deliveries_text(summary)
    if summary.interrupted:
        raise typer.Exit(128 + summary.interrupted)
    if summary.bugs:
        raise typer.Exit(EXIT_BUG)
    if summary.failed:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def serve(ctx: typer.Context, db: DbOption = None, config: ConfigOption = None) -> None:
    """Run the daemon: check sources as they come due until SIGTERM or SIGINT.

    Serves /healthz, /metrics and the merged feeds (/feeds/all.atom, ...) on [serve] host and
    [serve] port (127.0.0.1:8080 unless set); its log lines are its output, on a terminal too.
    """
    ctx.obj.loud = True  # before the settings configure logging
    options = session(ctx, db, config)

    def action() -> None:
        from scheduler.daemon import Daemon  # noqa: PLC0415

        settings = options.settings()
        with options.store(create=True) as store:
            run_async(Daemon(store, settings).run())

    guarded(action)


@app.command()
def healthcheck(ctx: typer.Context, db: DbOption = None, config: ConfigOption = None) -> None:
    """Ask the local daemon's /healthz; exit 0 when healthy (the container's HEALTHCHECK)."""
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    settings = session(ctx, db, config).settings()
    url = _healthz_url(settings.serve.host, settings.serve.port)
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            typer.echo(response.read().decode().strip())
    except urllib.error.HTTPError as exc:
        fail(f"{url}: {exc.code} {exc.read().decode().strip()}", EXIT_FAILED, "unhealthy")
    except (urllib.error.URLError, OSError) as exc:
        fail(f"{url}: no answer ({getattr(exc, 'reason', exc)})", EXIT_FAILED, "unhealthy")


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
    ctx: typer.Context,
    as_json: JsonOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """The effective settings, and where each one came from."""
    from ingest.config import SETTINGS, display_value  # noqa: PLC0415
    from ingest.urls import redacted  # noqa: PLC0415

    settings = session(ctx, db, config).settings()
    rows = [
        (s.key, display_value(s, settings.value(s.key)), settings.origins[s.key]) for s in SETTINGS
    ]
    sources = [redacted(spec.url) for spec in settings.sources]
    if as_json:
        document = {
            "settings": [
                {"key": key, "value": value, "origin": origin} for key, value, origin in rows
            ],
            "sources": [{"url": url} for url in sources],
            "sources_origin": settings.origins["sources"],
            "config_file": str(settings.config_path) if settings.config_path else None,
        }
        print_json(document)
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
        str | None,
        typer.Option(
            "--category", metavar="C", help="Only posts with this category (case ignored)."
        ),
    ] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: LimitOption = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Stored posts, newest first by their publish date (UTC); filters combine."""
    options = session(ctx, db, config)
    if since and until and since > until:
        fail("--since is after --until: no post can match", EXIT_USAGE)

    def action() -> list[StoredPost]:
        from storage import PostFilter  # noqa: PLC0415

        with options.store() as store:
            where = PostFilter(
                source_id=source_id_of(store, source_key),
                category=category,
                since=since,
                until=until,
            )
            return store.list_posts(limit=limit, where=where)

    from ingest.cli import show  # noqa: PLC0415

    show.posts(guarded(action), as_json=as_json, empty="no posts match")


@entries_app.command("search")
def entries_search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(metavar="QUERY", help='Words or "a phrase".')],
    *,
    as_json: JsonOption = False,
    limit: Annotated[
        int, typer.Option("--limit", metavar="N", parser=positive_int, help="At most N posts.")
    ] = 20,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Posts whose title or text holds every word of QUERY, best match first.

    Chinese, Japanese and Korean work without spaces: `ingest entries search 离职潮`.
    """
    options = session(ctx, db, config)
    if not query.strip():
        fail("QUERY is empty: give a word or phrase to look for", EXIT_USAGE)
    found = options.on_store(lambda store: store.search_posts(query, limit=limit))
    from ingest.cli import show  # noqa: PLC0415

    show.posts(found, as_json=as_json, empty=f"no post holds {query!r}")


@entries_app.command("show")
def entries_show(
    ctx: typer.Context,
    post_id: Annotated[
        int,
        typer.Argument(metavar="ID", parser=positive_int, help="Post id, from `entries list`."),
    ],
    as_json: JsonOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """One post as its front-matter file."""
    stored = session(ctx, db, config).on_store(lambda store: store.get_post(post_id))
    if stored is None:
        fail(f"no post with id {post_id}; `ingest entries list` shows the ids", EXIT_FAILED)
    from ingest.cli import show  # noqa: PLC0415
    from ingest.publish.render import render_post  # noqa: PLC0415

    if as_json:
        print_json(show.post(stored))
    else:
        typer.echo(render_post(stored.post), nl=False)


def _layout(text: str) -> str:
    from ingest.publish.export import Layout  # noqa: PLC0415

    try:
        return Layout(text.strip().lower()).value
    except ValueError:
        choices = ", ".join(layout.value for layout in Layout)
        raise typer.BadParameter(f"{text!r} is not a layout; use one of: {choices}") from None


@app.command("export")
def export(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(
            metavar="DIR|FILE",
            help="Folder to write posts into; with --format, the feed's file (- for stdout).",
        ),
    ],
    *,
    layout: Annotated[
        str | None,
        typer.Option(
            "--layout",
            metavar="LAYOUT",
            parser=_layout,
            help="File layout: hexo or flat [default: hexo].",
            show_default=False,
        ),
    ] = None,
    feed_format: FormatOption = None,
    category: CategoryOption = None,
    source_key: SourceOption = None,
    limit: FeedLimitOption = None,
    url: UrlOption = None,
    title: TitleOption = None,
    since: SinceOption = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Write every post as a front-matter file; unchanged files are left alone.

    With --format atom|json-feed: one merged feed of the newest posts instead (see docs/cli.md).
    """
    options = session(ctx, db, config)
    if feed_format is not None:
        if layout is not None:
            fail("--layout is for a folder of files; --format writes one feed", EXIT_USAGE)
        export_feed(
            options,
            target,
            feed_format,
            since=since,
            category=category,
            source_key=source_key,
            limit=limit,
            url=url,
            title=title,
        )
        return
    refuse_feed_options_without_format(
        category=category, source=source_key, limit=limit, url=url, title=title
    )
    directory = Path(target)
    _require_folder(directory)

    def action() -> str:
        from ingest.publish.export import Layout, export_posts  # noqa: PLC0415

        with options.store() as store:
            summary = export_posts(
                store.iter_posts(since=since), directory, Layout(layout or Layout.HEXO)
            )
        return (
            f"{summary.written} written, {summary.unchanged} unchanged, "
            f"{summary.removed} old copies removed in {directory}"
        )

    typer.echo(guarded(action))


def _require_folder(directory: Path) -> None:
    """Exit 2 when DIR cannot be the folder export writes into: an existing file, or a name
    that says it is an OPML file (``ingest feeds export`` writes those)."""
    if directory.exists() and not directory.is_dir():
        fail(f"DIR {directory} is a file; give a folder to write the posts into", EXIT_USAGE)
    if directory.suffix.lower() == ".opml":
        fail(
            f"DIR {directory} names an OPML file; `ingest export` writes posts into a folder, "
            f"`ingest feeds export > {directory}` writes the sources as OPML",
            EXIT_USAGE,
        )


@app.command()
def stats(
    ctx: typer.Context,
    as_json: JsonOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Per source: status, last and next check, errors, posts; store totals; per hook:
    deliveries pending, delivered and failed, and the last error."""
    report = session(ctx, db, config).on_store(lambda store: store.stats())
    from ingest.cli import show  # noqa: PLC0415

    if as_json:
        print_json(show.stats_json(report))
    else:
        show.stats_text(report)


@db_app.command("upgrade")
def db_upgrade(
    ctx: typer.Context,
    as_json: JsonOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Make the store, or bring its schema to the newest version (every command that writes
    also does it on open)."""
    before, after = session(ctx, db, config).on_store(
        lambda store: store.migrate(), create=True, migrate=False
    )
    if as_json:
        print_json({"from": before, "to": after, "changed": before != after})
    elif before == after:
        typer.echo(f"the store is at the newest schema ({after}); nothing to do")
    else:
        typer.echo(f"the store's schema went from {before or 'empty'} to {after}")


@db_app.command("index")
def db_index(
    ctx: typer.Context,
    as_json: JsonOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Index every post waiting for the search index (searches and the daemon also do it)."""
    indexed = session(ctx, db, config).on_store(lambda store: store.index_backlog())
    if as_json:
        print_json({"indexed": indexed})
    else:
        typer.echo(f"{indexed} posts indexed; the search index is up to date")


def main() -> None:
    app(prog_name="ingest")  # the same name for the console script and `python -m ingest`
