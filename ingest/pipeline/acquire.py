"""The first half of a check: fetch (or read) one source and digest its document, storing nothing.

``Pass`` takes this step for every source of a pass, with its shared fetcher and digesters, and
then decides and stores; ``ingest parse`` takes it alone (``preview``), to show what a source
would give. Either way the document goes through the same guarded fetcher (address guard,
size and time caps) and the same digest with the same keep and block rules (``rules_for``), so
what ``parse`` prints is what ``run`` would store.

The parsers (``ingest.digest.document``) are imported when the first document comes: they cost
a process a tenth of a second and 15 MB, and a pass of 304s never needs them.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from functools import partial

from ingest.config import Settings
from ingest.fetch.client import Fetcher
from ingest.fetch.local import LocalFeed, read_local
from ingest.filters import RuleSet
from ingest.pipeline.workers import Digester
from ingest.types import Digest, Fetched, FetchResult, SourceSpec
from ingest.urls import is_http_url


async def acquire(
    url: str,
    spec: SourceSpec,
    *,
    settings: Settings,
    fetcher: Fetcher,
    digester: Digester,
    now: datetime,
    etag: str | None = None,
    last_modified: str | None = None,
    pushed: Fetched | None = None,
) -> tuple[FetchResult | None, Digest | None]:
    """(what fetching or reading ``url`` came to, the digest of its new document).

    ``url`` is where the source is now (``spec.url`` unless it moved); the result is None for
    a local source, read whole. ``pushed`` is a document its WebSub hub pushed to us: digested
    as if fetched, nothing fetched. Raises SourceError for a document or local source that
    fails (no feed, a missing file, a dead worker); what the server or the network does is a
    value.
    """
    max_body = spec.max_body or settings.fetch.max_body
    comments = spec.comments if spec.comments is not None else settings.defaults.comments
    rules = rules_for(spec, settings)
    run_digest = partial(digester.run, url, spec=spec, comments=comments, now=now, rules=rules)
    if pushed is not None or is_http_url(url):
        result = pushed or await fetcher.fetch(
            url, etag=etag, last_modified=last_modified, max_body=max_body
        )
        if not isinstance(result, Fetched):
            return result, None
        from ingest.digest.document import digest_feed  # noqa: PLC0415  (see the docstring)

        digest = await run_digest(
            digest_feed, result.document, url=result.url, charset=result.charset
        )
        return result, digest
    from ingest.digest.document import digest_feed, digest_posts  # noqa: PLC0415

    local = await asyncio.to_thread(read_local, url, max_body=max_body)
    if isinstance(local, LocalFeed):
        return None, await run_digest(digest_feed, local.data)
    return None, await run_digest(digest_posts, local.files, local.skipped)


def rules_for(spec: SourceSpec, settings: Settings) -> tuple[RuleSet, ...]:
    """The keep and block rules that judge ``spec``'s entries: ``[filters]``, then its own."""
    return (
        RuleSet.of("[filters]", settings.filters.keep, settings.filters.block),
        RuleSet.of("source", spec.keep, spec.block),
    )


async def preview(
    spec: SourceSpec, settings: Settings, now: datetime
) -> tuple[FetchResult | None, Digest | None]:
    """``acquire`` for one source on its own, with a fetcher and a digest thread of its own."""
    digester = Digester(0)
    try:
        async with Fetcher(settings.fetch) as fetcher:
            return await acquire(
                spec.url, spec, settings=settings, fetcher=fetcher, digester=digester, now=now
            )
    finally:
        digester.close()
