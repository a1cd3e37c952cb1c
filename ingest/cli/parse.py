"""``ingest parse URL|FILE``: the posts a source would give, shown and never stored.

The source is fetched (or read) and digested by the pipeline's own first half
(``ingest.pipeline.acquire.preview``): the same guarded fetcher, caps and digest as ``ingest
run``, so what is printed is what a run would store. No store is opened or created, so it
answers "what would this feed give?" before the feed is added, and reproduces a source's
failure outside the daemon. The keep and block rules are those of the config: ``[filters]``,
and the source's own when the config lists it; the entries they keep out are named on stderr.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ingest.cli.base import (
    EXIT_BUG,
    EXIT_FAILED,
    ConfigOption,
    DbOption,
    JsonOption,
    fail,
    guarded,
    print_json,
    run_async,
    session,
)
from ingest.config import Settings, canonical_source_url
from ingest.errors import ConfigError, IngestError
from ingest.urls import redacted

if TYPE_CHECKING:  # imported where used: `ingest --help` loads no fetcher (see ingest.cli.base)
    from ingest.types import Digest, SourceSpec

SourceArgument = Annotated[
    str,
    typer.Argument(
        metavar="URL|FILE",
        help="An http(s) URL, or a feed file, a front-matter file or a folder of them.",
    ),
]


def parse(
    ctx: typer.Context,
    source: SourceArgument,
    as_json: JsonOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Print the posts a source would give, storing nothing (no store is opened)."""
    options = session(ctx, db, config)

    def action() -> tuple[SourceSpec, Digest]:
        from ingest.pipeline.acquire import preview  # noqa: PLC0415
        from ingest.types import Failed, Failure  # noqa: PLC0415

        settings = options.settings()
        spec = _spec(source, settings)
        try:
            result, digest = run_async(preview(spec, settings, datetime.now(UTC)))
        except IngestError:
            raise  # a source that fails (exit 1) or a bad setting (exit 2): ``guarded``'s
        except Exception as exc:  # noqa: BLE001  (anything else is a bug: exit 70)
            fail(f"{redacted(spec.url)}: {Failed.bug(exc).reason}", EXIT_BUG)
        if isinstance(result, Failure):
            fail(f"{redacted(spec.url)}: {result.reason}", EXIT_FAILED)
        if digest is None:
            fail(f"{redacted(spec.url)}: the server sent no document", EXIT_FAILED)
        return spec, digest

    spec, digest = guarded(action)
    # On stderr, so stdout is only the posts: a feed with no entries yet says so here.
    typer.echo(f"{len(digest.posts)} posts from {redacted(spec.url)}", err=True)
    for reason in digest.skipped:
        typer.echo(f"skipped: {reason}", err=True)
    for entry in digest.filtered:
        named = entry.guid or entry.link
        typer.echo(
            f"filtered: {entry.title!r}{f' ({named})' if named else ''} by {entry.rule}", err=True
        )
    from ingest.publish.render import post_json, render_post  # noqa: PLC0415

    if as_json:
        print_json(
            [
                post_json(post, post_id=None, source=redacted(spec.url), revision=None)
                for post in digest.posts
            ]
        )
        return
    for number, post in enumerate(digest.posts, start=1):
        if number > 1:
            typer.echo()
        typer.echo(f"==> post {number} of {len(digest.posts)} <==")
        typer.echo(render_post(post), nl=False)


def _spec(source: str, settings: Settings) -> SourceSpec:
    """The source ``source`` names: the config's own settings for it when it has it, else a
    source with none (the config's defaults apply). ConfigError (exit 2) for a scheme we never
    read."""
    from ingest.types import SourceSpec  # noqa: PLC0415

    try:
        url = canonical_source_url(source.strip(), Path.cwd())
    except ValueError as exc:
        raise ConfigError("URL|FILE", str(exc)) from exc
    return next((spec for spec in settings.sources if spec.url == url), SourceSpec(url=url))
