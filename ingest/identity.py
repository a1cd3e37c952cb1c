"""When two entries are the same post, and what storing a batch of posts changes (DESIGN §4).

``decide`` is a pure function of one source's new posts and what the store already knows about
them (``Change``, ``KnownSighting`` and ``EntryIntent`` are in ``ingest.types``); the store
calls it inside the transaction that applies its answer, which the caller hands the store
(``ingest.types.Decider``). Keeping it apart from SQL means every rule
below is tested without a database.

- A post is identified by its content: the sha256 of its title, sanitized body and enclosure
  and media URLs, whitespace collapsed. The same article from two feeds, or from a feed and a
  seed file, is one post; two episodes that differ only in their audio file are two.
- An entry is identified within its source by its guid, else its link, else its content hash.
  When a document gives the same guid to entries that differ, each of them falls back to its
  guid and link, and where that is shared too, to its content hash (``keyed``): publishers do
  reuse guids, and nothing distinct is dropped. Entries that are the same in every respect
  (a true repeat) stay one. Each source's sighting of an entry remembers the hash that source
  last served, so:
- same key, same hash as last time: nothing changed (the sighting is touched);
- same key, new hash: the source edited the entry, and the post it points to is revised in
  place (hash and body replaced, revision + 1) -- unless the new content is already stored, in
  which case the sighting moves to that post, or the post no longer holds what this source
  last served (another source, or another entry of this batch, revised it meanwhile), in which
  case the new version is a post of its own: revising would overwrite the other's version;
- new key: a new sighting, of an existing post (a duplicate) or of a new one.

Comparing a source with its own last sighting, not with the post, keeps two sources that serve
different versions of one article from revising it back and forth on every pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import replace

from ingest.types import Change, EntryIntent, KnownSighting, Post


def collapse_whitespace(text: str) -> str:
    """Runs of whitespace as one space, ends trimmed: the canonical form used for hashing.

    ``str.split()`` splits on exactly the characters the regular expression ``\\s`` matches
    (``str.isspace``), four times faster; ``tests/test_identity.py`` checks they agree.
    """
    return " ".join(text.split())


def content_hash(title: str, body: str, media: Iterable[str] = ()) -> str:
    """The post's identity: sha256 hex of its title, body and media URLs, each
    whitespace-collapsed, one per line.

    Without media the hash is the one stored before media counted (title and body alone), so
    every stored post without an enclosure keeps its hash (docs/decisions.md, "Identity").
    """
    parts = [title, body, *media]
    canonical = "\n".join(collapse_whitespace(part) for part in parts)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def keyed(posts: Sequence[Post]) -> list[Post]:
    """One document's ``posts`` with entry keys that tell different entries apart.

    An entry's key is the first of guid, guid + link, content hash (without a guid: link,
    content hash) that no entry with other content in the same document shares. Entries with
    unique guids keep them; true repeats keep sharing theirs (``decide`` stores them once).
    Every entry that shares a guid falls back, not only the later ones: publishers put new items
    first, and the first one keeping the bare guid would make a new item look like an edit of
    the old one it shares the guid with.
    """
    chains = [_key_chain(post) for post in posts]
    contents: dict[str, set[str]] = {}
    for post, chain in zip(posts, chains, strict=True):
        for key in chain:
            contents.setdefault(key, set()).add(post.content_hash)
    result = []
    for post, chain in zip(posts, chains, strict=True):
        key = next((k for k in chain if len(contents[k]) == 1), post.content_hash)
        result.append(post if key == post.entry_key else replace(post, key=key))
    return result


def _key_chain(post: Post) -> tuple[str, ...]:
    """The keys ``post`` may have, most stable first (DESIGN §4). A stored link is a serialized
    URL, which holds no space, so ``guid link`` is never ambiguous."""
    if post.guid and post.link:
        return post.guid, f"{post.guid} {post.link}", post.content_hash
    first = post.guid or post.link
    return (first, post.content_hash) if first else (post.content_hash,)


def decide(
    posts: Sequence[Post],
    sightings: Mapping[str, KnownSighting],
    stored_hashes: AbstractSet[str],
) -> list[EntryIntent]:
    """The intents for one source's ``posts``, in document order.

    ``sightings`` are this source's known sightings by entry key; ``stored_hashes`` are those
    content hashes of ``posts`` that are already stored. An entry whose key repeats within
    ``posts`` is only taken the first time: after ``keyed`` only a true repeat does.
    """
    known_hashes = set(stored_hashes)
    seen_keys: set[str] = set()
    revised: set[int] = set()
    intents: list[EntryIntent] = []
    for post in posts:
        key = post.entry_key
        if key in seen_keys:
            continue
        seen_keys.add(key)
        previous = sightings.get(key)
        if previous is not None and previous.content_hash == post.content_hash:
            intents.append(EntryIntent(Change.UNCHANGED, post))
            continue
        if post.content_hash in known_hashes:
            intents.append(EntryIntent(Change.DUPLICATE, post))
        elif (
            previous is not None
            and previous.post_hash == previous.content_hash
            and previous.post_id not in revised
        ):
            intents.append(EntryIntent(Change.UPDATED, post, revise=previous.post_id))
            revised.add(previous.post_id)
        else:
            intents.append(EntryIntent(Change.NEW, post))
        known_hashes.add(post.content_hash)
    return intents
