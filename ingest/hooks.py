"""The rules of hooks (``[[hooks]]``): which posts a hook is told about, what a delivery is
called, when a failed one is tried again, and how a webhook body is signed.

Pure functions of their arguments; the store applies ``router`` inside the transaction that
stores the posts (as it applies ``ingest.identity.decide``), and ``ingest.pipeline.deliver``
does the I/O.

- **Which**: a hook wants the events in its ``on`` of posts having one of its ``categories``
  (case-insensitive) stored from one of its ``sources`` (an id, URL or path); a filter left
  out takes every post. ``new`` is a post stored for the first time, ``updated`` a stored post
  revised by an edit at its source (a sighting that moves to another stored post is neither).
- **Delivery id**: ``<post id>-<revision>-<hook>``. The same for every attempt of one
  delivery, different for every revision and hook: the receiver's idempotency key.
- **Retries**: after the n-th failed attempt the next is ``backoff * 2^(n-1)`` later, at most
  ``backoff_cap``; after ``max_attempts`` failures the delivery is given up (kept, shown by
  ``ingest stats``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from ingest.config import DeliverySettings, HookSpec
from ingest.types import Change, HookRouter, Post, SourceState


def router(hooks: Sequence[HookSpec]) -> HookRouter | None:
    """The names of the hooks in ``hooks`` that want an event of a post; None without hooks,
    so storing posts does no hook work at all."""
    if not hooks:
        return None

    def route(event: Change, post: Post, source: SourceState) -> list[str]:
        return [
            hook.name for hook in hooks if hook.wants(event, post.categories, source.id, source.url)
        ]

    return route


def delivery_id(post_id: int, revision: int, hook: str) -> str:
    """The id of the delivery of revision ``revision`` of post ``post_id`` to ``hook``."""
    return f"{post_id}-{revision}-{hook}"


def retry_in(attempts: int, settings: DeliverySettings) -> float | None:
    """Seconds to wait before trying a delivery again after its ``attempts``-th failure; None:
    give it up. No clock here: the store adds the wait to its own (``storage.outbox``)."""
    if attempts >= settings.max_attempts:
        return None
    # Capped before raising 2 to a large power: max_attempts may be in the hundreds.
    doublings = min(attempts - 1, 32)
    return float(min(settings.backoff * 2**doublings, settings.backoff_cap))


def signature(secret: str, body: bytes) -> str:
    """The ``X-Ingest-Signature`` value of ``body``: ``sha256=`` and the hex HMAC-SHA256 of the
    exact bytes sent, keyed with ``secret`` (UTF-8)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"
