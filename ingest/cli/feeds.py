"""``ingest feeds``: add, list, remove, import and export the sources kept in the store.

Sources added here (origin ``cli``) or imported (origin ``opml``) live beside those of the
config file (origin ``config``); ``ingest run`` reapplies the config's sources on every pass,
so the config file stays the place to change or remove those.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ingest.cli.base import (
    ConfigOption,
    DbOption,
    JsonOption,
    fail_no_source,
    find_source,
    guarded,
    print_json,
    session,
)
from ingest.errors import ConfigError, OpmlError
from ingest.urls import redacted

if TYPE_CHECKING:  # imported where used: `ingest --help` loads no store (see ingest.cli.base)
    from ingest.types import SourceSpec, StoredSource
    from storage import ImportResult, Removal

feeds_app = typer.Typer(help="Manage the sources kept in the store.", no_args_is_help=True)


@feeds_app.command("add")
def feeds_add(
    ctx: typer.Context,
    *,
    url: Annotated[
        str, typer.Argument(metavar="URL", help="http(s) URL; with --local, a path or file:// URL.")
    ],
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="URL is a local file or folder to read (a feed, a post or a folder of posts).",
        ),
    ] = False,
    name: Annotated[
        str | None, typer.Option("--name", help="Name overriding the feed's own title.")
    ] = None,
    categories: Annotated[
        list[str] | None,
        typer.Option("--category", metavar="C", help="Category put first on every post; repeat."),
    ] = None,
    interval: Annotated[
        str | None, typer.Option("--interval", help='Poll interval, e.g. "30m" or "2h".')
    ] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Add a source; for one already stored, change the settings given instead."""
    options = session(ctx, db, config)

    from storage import AddAction  # noqa: PLC0415

    def action() -> tuple[StoredSource, AddAction]:
        spec = _spec(url, name, categories or [], interval, local=local)
        with options.store(create=True) as store:
            return store.add_source(spec, origin="cli", now=datetime.now(UTC))

    source, done = guarded(action)
    if as_json:
        print_json({**_source_json(source), "action": done.value})
    elif done is AddAction.UNCHANGED:
        typer.echo(f"source {source.id} already has these settings: {redacted(source.spec.url)}")
    else:
        typer.echo(f"{done.value} source {source.id}: {redacted(source.spec.url)}")


def _spec(
    url: str, name: str | None, categories: list[str], interval: str | None, *, local: bool
) -> SourceSpec:
    """The source the options describe; ConfigError (exit 2) naming the bad option.

    A local source reads this machine's files into posts, so it is taken only when asked for
    with ``--local``: a URL pasted from elsewhere never does that by accident.
    """
    from ingest.config import canonical_source_url  # noqa: PLC0415
    from ingest.types import SourceSpec  # noqa: PLC0415
    from ingest.units import parse_duration  # noqa: PLC0415
    from ingest.urls import is_http_url  # noqa: PLC0415

    try:
        canonical = canonical_source_url(url.strip(), Path.cwd())
    except ValueError as exc:
        raise ConfigError("URL", str(exc)) from exc
    if not local and not is_http_url(canonical):
        raise ConfigError("URL", f"{url!r} is a local file or folder; add --local to read it")
    try:
        interval_s = round(parse_duration(interval)) if interval is not None else None
    except ValueError as exc:
        raise ConfigError("--interval", str(exc)) from exc
    if name is not None and not name.strip():
        raise ConfigError("--name", "is empty; leave it out to use the feed's own title")
    return SourceSpec(
        url=canonical,
        name=name.strip() if name else None,
        categories=tuple(dict.fromkeys(c.strip() for c in categories if c.strip())),
        interval_s=interval_s,
    )


@feeds_app.command("list")
def feeds_list(
    ctx: typer.Context,
    as_json: JsonOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Every source with its settings (`ingest stats` shows their health)."""
    options = session(ctx, db, config)

    from ingest.units import format_duration  # noqa: PLC0415

    sources = options.on_store(lambda store: store.list_sources())
    if as_json:
        print_json([_source_json(s) for s in sources])
        return
    for source in sources:
        spec = source.spec
        details = [f"name: {spec.name}"] if spec.name else []
        if spec.categories:
            details.append(f"categories: {', '.join(spec.categories)}")
        if spec.interval_s:
            details.append(f"every {format_duration(spec.interval_s)}")
        if not source.enabled:
            details.append("disabled")
        extra = f"  ({'; '.join(details)})" if details else ""
        typer.echo(f"{source.id:>4}  {source.origin:<6}  {redacted(spec.url)}{extra}")


@feeds_app.command("remove")
def feeds_remove(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(metavar="ID_OR_URL", help="Source id or URL.")],
    *,
    purge: Annotated[
        bool,
        typer.Option("--purge", help="Also delete its posts that no other source has served."),
    ] = False,
    as_json: JsonOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Remove a source and its sightings; its posts stay unless --purge."""
    options = session(ctx, db, config)

    def action() -> Removal | None:
        with options.store() as store:
            source = find_source(store, key)
            return None if source is None else store.remove_source(source.id, purge=purge)

    removal = guarded(action)
    if removal is None:
        fail_no_source(key)
    if as_json:
        print_json(
            {
                **_source_json(removal.source),
                "posts_deleted": removal.posts_deleted,
                "posts_kept": removal.posts_kept,
            }
        )
    else:
        kept = f"{removal.posts_kept} posts kept"
        if purge:
            kept += " (other sources served them too)"
        typer.echo(
            f"removed source {removal.source.id} ({redacted(removal.source.spec.url)}): "
            f"{removal.posts_deleted} posts deleted, {kept}"
        )
    if removal.source.origin == "config":
        typer.echo(
            "note: this source comes from the config file; remove it there too, or the next "
            "`ingest run` adds it again",
            err=True,
        )


@feeds_app.command("import")
def feeds_import(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(metavar="FILE.opml", help="OPML subscription list.")],
    as_json: JsonOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Add the feeds of an OPML file (folders become categories); known URLs are skipped.

    A file that cannot be read, is not OPML or has a bad feed URL changes nothing.
    """
    options = session(ctx, db, config)

    def action() -> ImportResult:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise OpmlError(str(path), f"cannot be read: {exc.strerror}") from exc
        from ingest.publish.opml import read_opml  # noqa: PLC0415

        specs = read_opml(data, where=str(path))
        with options.store(create=True) as store:
            return store.import_sources(specs, origin="opml", now=datetime.now(UTC))

    result = guarded(action)
    if as_json:
        print_json(
            {
                "added": [_source_json(s) for s in result.added],
                "skipped": [{"url": redacted(url), "reason": why} for url, why in result.skipped],
            }
        )
        return
    for source in result.added:
        typer.echo(f"added source {source.id}: {redacted(source.spec.url)}")
    for url, why in result.skipped:
        typer.echo(f"skipped {redacted(url)}: {why}")
    typer.echo(f"{len(result.added)} added, {len(result.skipped)} skipped")


@feeds_app.command("export")
def feeds_export(
    ctx: typer.Context,
    with_credentials: Annotated[
        bool,
        typer.Option(
            "--with-credentials",
            help="Keep passwords and tokens in feed URLs (a backup to import again), instead "
            "of showing them as ***.",
        ),
    ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Print every source as OPML 2.0, categories as folders (`ingest feeds import` reads it).

    Passwords and tokens in feed URLs are shown as *** unless --with-credentials: an OPML file
    is made to be shared.
    """
    options = session(ctx, db, config)

    from ingest.publish.opml import write_opml  # noqa: PLC0415

    sources = options.on_store(lambda store: store.list_sources())
    typer.echo(write_opml(sources, now=datetime.now(UTC), credentials=with_credentials), nl=False)
    hidden = sum(redacted(s.spec.url) is not s.spec.url for s in sources)
    if hidden and not with_credentials:
        urls = "1 feed URL" if hidden == 1 else f"{hidden} feed URLs"
        typer.echo(
            f"note: credentials in {urls} are shown as ***; --with-credentials keeps them",
            err=True,
        )


def _source_json(source: StoredSource) -> dict[str, object]:
    from ingest.publish.render import iso_utc  # noqa: PLC0415
    from ingest.units import format_duration  # noqa: PLC0415

    spec = source.spec
    return {
        "id": source.id,
        "url": redacted(spec.url),
        "name": spec.name,
        "title": source.title,
        "categories": list(spec.categories),
        "interval": format_duration(spec.interval_s) if spec.interval_s else None,
        "comments": spec.comments,
        "max_body": spec.max_body,
        "origin": source.origin,
        "enabled": source.enabled,
        "created_at": iso_utc(source.created_at),
    }
