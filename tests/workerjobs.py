"""A stand-in for ``ingest.digest.document`` that worker processes can import quickly.

A spawned worker imports the module of every function it runs; this one imports next to
nothing (not the store, not pytest's fixtures), so a pool the tests start is ready in a fraction
of a second, well within the time limits they set.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ingest.types import Digest

HANG_S = 60.0
"""How long a "hang" document takes: longer than any test waits, so never, as far as it knows."""

WAIT_PREFIX = "wait:"


def digest(document: str) -> Digest:
    """A digest titled ``document`` at once, except for three kinds of document:

    - ``die`` kills the worker, as running out of memory would;
    - ``hang`` digests for ``HANG_S``;
    - ``wait:PATH`` digests until the file ``PATH`` exists, so a test decides when it ends.
    """
    if document == "die":
        os._exit(3)
    if document == "hang":
        time.sleep(HANG_S)
    if document.startswith(WAIT_PREFIX):
        gate = Path(document.removeprefix(WAIT_PREFIX))
        while not gate.exists():
            time.sleep(0.01)
    return Digest(feed_title=document, posts=())
