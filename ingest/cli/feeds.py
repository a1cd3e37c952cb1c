"""``ingest feeds``: add, list, change, enable, disable, remove, import and export the sources
kept in the store.

Sources added here (origin ``cli``) or imported (origin ``opml``) live beside those of the
config file (origin ``config``); ``ingest run`` reapplies the config on every pass, so the config
file (or ``INGEST_SOURCES``) stays the place to change or remove those: a source it stops
listing is retired (``ingest.sources``). What is typed is checked at the door: a URL is stored
in its canonical form (``ingest.urls.source_url``), one already stored is refused naming it, a
local path must exist, an interval is at least ``[schedule] min_interval``.

Exit codes: 0 done; 1 the source named is unknown or already stored (``SourceChoiceError``);
2 a bad option or URL (``ConfigError``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from ingest.cli.base import (
    ConfigOption,
    Context,
    DbOption,
    JsonOption,
    find_source,
    guarded,
    no_source,
    print_json,
    session,
)
from ingest.config import canonical_source_url
from ingest.errors import ConfigError, OpmlError, SourceChoiceError
from ingest.filters import RuleError, parse_rules, shown
from ingest.sources import CONFIG_ORIGIN, duplicate_of, plan_config
from ingest.types import SourceSpec, StoredSource
from ingest.units import format_duration, parse_duration, parse_size
from ingest.urls import is_http_url, redacted

if TYPE_CHECKING:  # imported where used: `ingest --help` loads no store (see ingest.cli.base)
    from storage import ImportResult, Removal, Store

Known = TypeVar("Known")

feeds_app = typer.Typer(help="Manage the sources kept in the store.", no_args_is_help=True)


IntervalOption = Annotated[
    str | None, typer.Option("--interval", help='Poll interval, e.g. "30m" or "2h".')
]
NameOption = Annotated[
    str | None, typer.Option("--name", help="Name overriding the feed's own title.")
]
CategoryOption = Annotated[
    list[str] | None,
    typer.Option("--category", metavar="C", help="Category put first on every post; repeat."),
]
KeyArgument = Annotated[str, typer.Argument(metavar="ID_OR_URL", help="Source id or URL.")]
KeepOption = Annotated[
    list[str] | None,
    typer.Option(
        "--keep",
        metavar="REGEX",
        help="Store only entries this matches (title, text, author, categories, link; "
        "title:REGEX looks at the title only); repeat.",
    ),
]
BlockOption = Annotated[
    list[str] | None,
    typer.Option(
        "--block", metavar="REGEX", help="Never store entries this matches (as --keep); repeat."
    ),
]


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
    name: NameOption = None,
    categories: CategoryOption = None,
    interval: IntervalOption = None,
    keep: KeepOption = None,
    block: BlockOption = None,
    as_json: JsonOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Add a source; one already stored (in any spelling of its URL) is refused, exit 1."""
    options = session(ctx, db, config)

    def action() -> StoredSource:
        min_interval = options.settings().schedule.min_interval
        spec = replace(
            _settings(name, categories or [], interval, None, None, min_interval=min_interval),
            url=_url(url, local=local),
            keep=_rules("--keep", keep),
            block=_rules("--block", block),
        )
        with options.store(create=True) as store:
            source, added = store.add_source(
                spec, origin="cli", now=datetime.now(UTC), duplicate=duplicate_of
            )
        if not added:
            raise SourceChoiceError(
                f"{redacted(url)!r} is already stored as source {source.id} "
                f"({redacted(source.spec.url)}); `ingest feeds update {source.id}` changes it"
            )
        return source

    source = guarded(action)
    if as_json:
        print_json(_source_json(source))
    else:
        typer.echo(f"added source {source.id}: {redacted(source.spec.url)}")


def _url(url: str, *, local: bool) -> str:
    """``url`` as stored (``canonical_source_url``); ConfigError (exit 2) saying what is wrong.

    A local source reads this machine's files into posts, so it is taken only when asked for
    with ``--local``: a URL pasted from elsewhere never does that by accident.
    """
    try:
        canonical = canonical_source_url(url.strip(), Path.cwd())
    except ValueError as exc:
        raise ConfigError("URL", str(exc)) from exc
    if is_http_url(canonical):
        return canonical
    if not local:
        found = Path(canonical).exists()
        raise ConfigError(
            "URL",
            f"{url!r} is a local file or folder; add --local to read it"
            if found
            else f"{url!r} is not an http(s) URL, nor a file or folder (those need --local)",
        )
    if not Path(canonical).exists():
        raise ConfigError("URL", f"{canonical}: no such file or folder")
    return canonical


def _rules(option: str, given: list[str] | None) -> tuple[str, ...]:
    """The rules ``option`` gives, each a valid regular expression (``ingest.filters``);
    ConfigError (exit 2) naming the first that is not."""
    try:
        return parse_rules(given or [])
    except RuleError as exc:
        raise ConfigError(option, exc.reason) from exc


def _settings(
    name: str | None,
    categories: list[str],
    interval: str | None,
    comments: bool | None,
    max_body: str | None,
    *,
    min_interval: float,
) -> SourceSpec:
    """The settings the options give (no URL yet); ConfigError (exit 2) naming a bad option.

    An interval below ``[schedule] min_interval`` is refused rather than stored: the schedule
    would never poll that often, and the stored value would say otherwise.
    """
    try:
        interval_s = round(parse_duration(interval)) if interval is not None else None
    except ValueError as exc:
        raise ConfigError("--interval", str(exc)) from exc
    if interval_s is not None and interval_s < min_interval:
        raise ConfigError(
            "--interval",
            f"{interval} is shorter than [schedule] min_interval "
            f"({format_duration(min_interval)}); no source is polled more often",
        )
    try:
        body_cap = parse_size(max_body) if max_body is not None else None
    except ValueError as exc:
        raise ConfigError("--max-body", str(exc)) from exc
    if name is not None and not name.strip():
        raise ConfigError("--name", "is empty; leave it out to use the feed's own title")
    return SourceSpec(
        url="",
        name=name.strip() if name else None,
        categories=tuple(dict.fromkeys(c.strip() for c in categories if c.strip())),
        interval_s=interval_s,
        comments=comments,
        max_body=body_cap,
    )


@feeds_app.command("update")
def feeds_update(
    ctx: typer.Context,
    *,
    key: KeyArgument,
    name: NameOption = None,
    categories: CategoryOption = None,
    interval: IntervalOption = None,
    comments: Annotated[
        bool | None,
        typer.Option("--comments/--no-comments", help="The posts' `comments` value."),
    ] = None,
    max_body: Annotated[
        str | None, typer.Option("--max-body", help='Largest response, e.g. "4MiB".')
    ] = None,
    keep: KeepOption = None,
    block: BlockOption = None,
    clear_keep: Annotated[
        bool, typer.Option("--clear-keep", help="Drop the keep rules (before any --keep).")
    ] = False,
    clear_block: Annotated[
        bool, typer.Option("--clear-block", help="Drop the block rules (before any --block).")
    ] = False,
    as_json: JsonOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Change a source's settings; those not given stay (categories and rules given replace
    the list).

    A source from the config file is changed there: the config sets it again on every run.
    """
    options = session(ctx, db, config)
    clear = [name for name, asked in (("keep", clear_keep), ("block", clear_block)) if asked]

    def action() -> StoredSource:
        min_interval = options.settings().schedule.min_interval
        given = replace(
            _settings(
                name, categories or [], interval, comments, max_body, min_interval=min_interval
            ),
            keep=_rules("--keep", keep),
            block=_rules("--block", block),
        )
        with options.store() as store:
            source = _find(store, key)
            if source.origin == CONFIG_ORIGIN and not source.retired:
                raise ConfigError(
                    f"source {source.id}",
                    "comes from the config file (or INGEST_SOURCES), which sets it again on "
                    "every run; change it there",
                )
            return _known(
                store.update_source(source.id, replace(given, url=source.spec.url), clear), key
            )

    _report("updated", guarded(action), as_json)


@feeds_app.command("enable")
def feeds_enable(
    ctx: typer.Context,
    key: KeyArgument,
    as_json: JsonOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Poll a disabled source again (410 Gone included); one the config retired becomes
    your own (origin cli)."""
    options = session(ctx, db, config)

    def action() -> StoredSource:
        with options.store() as store:
            return _known(store.set_enabled(_find(store, key).id, enabled=True), key)

    _report("enabled", guarded(action), as_json)


@feeds_app.command("disable")
def feeds_disable(
    ctx: typer.Context,
    key: KeyArgument,
    as_json: JsonOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Stop polling a source; its posts stay, and `ingest feeds enable` polls it again."""
    options = session(ctx, db, config)
    now = datetime.now(UTC)

    def action() -> StoredSource:
        with options.store() as store:
            reason = f"disabled with `ingest feeds disable` on {now:%Y-%m-%d %H:%M} UTC"
            return _known(
                store.set_enabled(_find(store, key).id, enabled=False, reason=reason), key
            )

    _report("disabled", guarded(action), as_json)


@feeds_app.command("reset-errors")
def feeds_reset_errors(
    ctx: typer.Context,
    key: KeyArgument,
    as_json: JsonOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Forget a source's failures: error count, backoff, a server's Retry-After and a
    410 Gone (which disabled it); it is due at once."""
    options = session(ctx, db, config)

    def action() -> StoredSource:
        with options.store() as store:
            return _known(store.reset_errors(_find(store, key).id), key)

    _report("reset the errors of", guarded(action), as_json)


def _find(store: Store, key: str) -> StoredSource:
    """The source ``key`` names; SourceChoiceError (exit 1) when there is none."""
    return _known(find_source(store, key), key)


def _known(found: Known | None, key: str) -> Known:
    """``found``, what the store did to the source ``key`` names; SourceChoiceError (exit 1)
    when it was None: no such source (or another process removed it meanwhile)."""
    if found is None:
        raise SourceChoiceError(no_source(key))
    return found


def _report(done: str, source: StoredSource, as_json: bool) -> None:
    if as_json:
        print_json(_source_json(source))
        return
    state = "" if source.enabled else f" (still disabled: {source.disabled_reason})"
    typer.echo(f"{done} source {source.id}: {redacted(source.spec.url)}{state}")


def sources_to_check(keys: Sequence[str]) -> Callable[[Store], set[int]]:
    """For ``ingest run ID|URL...``: the ids of the sources ``keys`` name, each of which must
    be known, enabled and not waiting for a server's Retry-After; SourceChoiceError (exit 1)
    naming the first that is not, and what to do about it."""

    def choose(store: Store) -> set[int]:
        now = datetime.now(UTC)
        chosen = {key: _find(store, key) for key in keys}
        states = {state.id: state for state in store.load_states([s.id for s in chosen.values()])}
        for source in chosen.values():
            state = states[source.id]
            named = f"source {source.id} ({redacted(source.spec.url)})"
            if source.retired:
                raise SourceChoiceError(
                    f"{named} is retired: {source.disabled_reason}; `ingest feeds enable "
                    f"{source.id}` polls it as your own"
                )
            if not state.enabled:
                raise SourceChoiceError(
                    f"{named} is disabled: {state.disabled_reason}; "
                    f"`ingest feeds enable {source.id}` polls it again"
                )
            if state.retry_after_until is not None and state.retry_after_until > now:
                raise SourceChoiceError(
                    f"{named}: its server asked to wait until "
                    f"{state.retry_after_until:%Y-%m-%d %H:%M} UTC; `ingest feeds reset-errors "
                    f"{source.id}` forgets that"
                )
        return {source.id for source in chosen.values()}

    return choose


@feeds_app.command("list")
def feeds_list(
    ctx: typer.Context,
    as_json: JsonOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Every source with its settings (`ingest stats` shows their health)."""
    options = session(ctx, db, config)

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
        details.extend(f"{kind}: {' '.join(map(shown, rules))}" for kind, rules in _rules_of(spec))
        if source.retired:
            details.append("retired: left the config")
        elif not source.enabled:
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

    def action() -> tuple[Removal, bool]:
        with options.store() as store:
            removal = _known(store.remove_source(_find(store, key).id, purge=purge), key)
            return removal, _config_adds_back(options, store, removal.source)

    removal, comes_back = guarded(action)
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
    if comes_back:
        typer.echo(
            "note: the config still lists this source; remove it there too, or the next "
            "`ingest run` adds it again",
            err=True,
        )


def _config_adds_back(options: Context, store: Store, removed: StoredSource) -> bool:
    """Whether the next ``ingest run`` adds ``removed`` again: the config in effect lists it
    (judged as that run will, by ``plan_config``). A config that does not load says nothing
    here; the run will say what is wrong with it."""
    try:
        settings = options.settings()
    except ConfigError:
        return False
    builtin = settings.origins["sources"] == "default"
    plan = plan_config(store.list_sources(), settings.sources, builtin=builtin)
    return any(duplicate_of([removed], spec.url) for spec in plan.add)


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
            return store.import_sources(
                specs, origin="opml", now=datetime.now(UTC), duplicate=duplicate_of
            )

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

    sources = options.on_store(lambda store: store.list_sources())
    from ingest.publish.opml import write_opml  # noqa: PLC0415

    typer.echo(write_opml(sources, now=datetime.now(UTC), credentials=with_credentials), nl=False)
    hidden = sum(redacted(s.spec.url) is not s.spec.url for s in sources)
    if hidden and not with_credentials:
        urls = "1 feed URL" if hidden == 1 else f"{hidden} feed URLs"
        typer.echo(
            f"note: credentials in {urls} are shown as ***; --with-credentials keeps them",
            err=True,
        )


def _rules_of(spec: SourceSpec) -> list[tuple[str, tuple[str, ...]]]:
    """The source's keep and block rules that it has, by kind."""
    return [(kind, rules) for kind, rules in (("keep", spec.keep), ("block", spec.block)) if rules]


def _source_json(source: StoredSource) -> dict[str, object]:
    from ingest.units import iso_utc  # noqa: PLC0415

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
        "keep": list(spec.keep),
        "block": list(spec.block),
        "origin": source.origin,
        "enabled": source.enabled,
        "disabled_reason": source.disabled_reason,
        "retired_at": iso_utc(source.retired_at) if source.retired_at else None,
        "created_at": iso_utc(source.created_at),
    }
