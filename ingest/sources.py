"""Which stored source a URL is, and what applying the config does: pure rules, no store.

Sources are compared by their canonical URL (``ingest.urls.source_url``; a local path is its
absolute path), so ``https://EXAMPLE.org:443/feed#x`` is ``https://example.org/feed``, and a
URL a source was permanently redirected away from still names that source. A store written
before URLs were canonicalised holds them as typed; they are canonicalised here when compared,
so an upgrade neither adds a second copy of a config source nor retires the first.

The config manages the sources it added (origin ``config``), and only those:

- a source it lists is added, or its settings updated; one it had retired is polled again;
- an enabled ``config`` source it no longer lists is retired: not polled any more, its posts
  and sightings kept (``feeds remove`` deletes on purpose; a config edit never does);
- sources added with ``ingest feeds add`` or ``import`` (origin ``cli``, ``opml``) are never
  touched, nor are ``config`` sources already disabled (by a 410 or by hand);
- the built-in config (no config file, no ``INGEST_SOURCES``) is the shipped ``seeds/`` folder
  for a store with no sources of its own. Once the store has others, the built-in config adds
  nothing and retires only its own source: a command run without the config file (from
  another folder) must not retire the sources of the real one.

The store calls ``plan_config`` inside the transaction that applies it (``SourcesPlanner``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ingest.types import SourceSpec, SourcesPlan, StoredSource
from ingest.urls import is_http_url, source_url

CONFIG_ORIGIN = "config"
"""``origin`` of the sources the config added, which the config manages."""


def url_key(url: str) -> str:
    """``url`` as sources are compared: canonical for http(s), as stored for a local path."""
    if not is_http_url(url):
        return url
    try:
        return source_url(url)
    except ValueError:
        return url  # stored by an older version: compared as it is


def _index(stored: Sequence[StoredSource]) -> dict[str, StoredSource]:
    """Each stored source by the keys of its URL and of the URLs it moved away from; a
    source's current URL wins over another's former one."""
    index: dict[str, StoredSource] = {}
    for source in stored:
        for old in source.previous_urls:
            index.setdefault(url_key(old), source)
    index.update({url_key(source.spec.url): source for source in stored})
    return index


def duplicate_of(stored: Sequence[StoredSource], url: str) -> StoredSource | None:
    """The stored source that already is ``url`` (a canonical URL or an absolute path)."""
    return _index(stored).get(url_key(url))


def plan_config(
    stored: Sequence[StoredSource], wanted: Sequence[SourceSpec], *, builtin: bool
) -> SourcesPlan:
    """What applying ``wanted``, the config's sources, does to ``stored``, every source.

    ``builtin``: ``wanted`` is the built-in config, which applies only to a store with no
    sources besides its own (see the module docstring). A source listed twice takes the
    settings of its last listing.
    """
    index = _index(stored)
    ours = {url_key(spec.url) for spec in wanted}
    managed = [s for s in stored if s.origin == CONFIG_ORIGIN]
    if builtin and any(url_key(s.spec.url) not in ours for s in stored):
        managed = [s for s in managed if url_key(s.spec.url) in ours]
        wanted = ()
    latest = {url_key(spec.url): spec for spec in wanted}
    add: dict[str, SourceSpec] = {}
    update: list[tuple[int, SourceSpec]] = []
    revive: list[int] = []
    listed: set[int] = set()
    for key, spec in latest.items():
        source = index.get(key)
        if source is None:
            add[key] = spec
            continue
        if source.id in listed:  # two spellings of one source, or its old and new URL
            continue
        listed.add(source.id)
        if replace(source.spec, url=spec.url, site_url=spec.site_url) != spec:
            update.append((source.id, spec))
        if source.retired_at is not None:
            revive.append(source.id)
    retire = [s.id for s in managed if s.enabled and s.id not in listed]
    return SourcesPlan(
        add=tuple(add.values()), update=tuple(update), retire=tuple(retire), revive=tuple(revive)
    )
