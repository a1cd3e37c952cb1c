"""``ingest export --format atom|json-feed FILE``: one merged feed written to a file or stdout.

The folder export (``--layout``) and the feed export share the command; this module holds the
feed's options and the writing, ``ingest.cli.app.export`` decides which one runs.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from ingest.cli.base import EXIT_USAGE, Context, fail, guarded, source_id_of
from ingest.publish.formats import DEFAULT_LIMIT, FeedFormat
from ingest.urls import is_http_url

FormatOption = Annotated[
    FeedFormat | None,
    typer.Option(
        "--format",
        help="Write one merged feed of the newest posts to FILE (- for stdout) instead of a "
        "folder of files.",
        show_default=False,
    ),
]
CategoryOption = Annotated[
    str | None,
    typer.Option("--category", help="With --format: only posts with this category (any case)."),
]
SourceOption = Annotated[
    str | None,
    typer.Option(
        "--source", metavar="ID_OR_URL", help="With --format: only posts this source served."
    ),
]
FeedLimitOption = Annotated[
    int | None,
    typer.Option(
        "--limit",
        min=1,
        help=f"With --format: the newest N posts [default: {DEFAULT_LIMIT}].",
        show_default=False,
    ),
]
UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        metavar="URL",
        help="With --format: the http(s) URL the feed is published at (its self link).",
    ),
]
TitleOption = Annotated[
    str | None,
    typer.Option("--title", help="With --format: the feed's title [default: from the selection]."),
]


def refuse_feed_options_without_format(**given: object) -> None:
    """Exit 2 naming the first feed option given without ``--format``."""
    for name, value in given.items():
        if value is not None:
            fail(f"--{name} works only with --format atom|json-feed", EXIT_USAGE)


def export_feed(
    options: Context,
    target: str,
    form: FeedFormat,
    *,
    since: datetime | None,
    category: str | None,
    source_key: str | None,
    limit: int | None,
    url: str | None,
    title: str | None,
) -> None:
    """Write the merged feed these options select to ``target`` (``-``: stdout); say what was
    done unless it went to stdout. Exit 1 for an unknown source or category."""
    if url is not None and not is_http_url(url):
        fail(f"--url {url!r}: give the http(s) URL the feed will be published at", EXIT_USAGE)
    from ingest.publish.export import write_if_changed  # noqa: PLC0415  (loads YAML)
    from ingest.publish.merged import Selection, merged_feed  # noqa: PLC0415  (loads the store)
    from ingest.publish.syndicate import render_feed  # noqa: PLC0415

    def action() -> tuple[str, int]:
        with options.store() as store:
            selection = Selection(
                category=category,
                source_id=source_id_of(store, source_key),
                since=since,
                limit=limit or DEFAULT_LIMIT,
                title=title,
            )
            feed = merged_feed(store, selection)
        return render_feed(feed, form, self_url=url).decode("utf-8"), len(feed.posts)

    document, posts = guarded(action)
    if target == "-":
        typer.echo(document, nl=False)
        return
    path = Path(target)
    changed = guarded(lambda: write_if_changed(path, document))
    counted = "1 post" if posts == 1 else f"{posts} posts"
    typer.echo(f"{counted} in {path} ({form.value}, {'written' if changed else 'unchanged'})")
