"""Where documents are converted to posts: worker processes, or one thread for small passes.

Workers are fresh interpreters ("spawn") that import only what conversion needs
(``ingest.convert``: feedparser, nh3, python-frontmatter), not the command line, the store or
the HTTP stack, so each stays near 30 MB. (A forked worker would inherit the whole program; a
fork server would be one more process of the same size.)

A worker that dies (out of memory, killed) breaks the whole pool, failing every conversion in
flight. The pool is then replaced once, and each conversion it broke is tried once more in the
new one, alone (other conversions wait meanwhile): the healthy documents go through; the one
that kills a worker again is what failed, and it fails alone. Workers leave signals to this
process and exit when it dies (``ingest.childproc``).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Any

from ingest.childproc import prepare_worker, stop_signals_blocked
from ingest.errors import SourceError
from ingest.types import Digest


class Converter:
    """Runs ``ingest.convert`` functions off the event loop; ``close`` when done."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor = self._new_executor()
        self._alone = asyncio.Lock()
        self._open = asyncio.Event()  # cleared while retries run, one at a time
        self._open.set()
        self._retrying = 0

    def _new_executor(self) -> Executor:
        if not self.workers:
            return ThreadPoolExecutor(1, "convert")
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(
            self.workers,
            mp_context=context,
            initializer=prepare_worker,
            initargs=(os.getpid(),),
        )

    async def run(
        self, source: str, func: Callable[..., Digest], *args: Any, **kwargs: Any
    ) -> Digest:
        """``func(*args, **kwargs)`` in a worker; a worker dying twice on it fails ``source``."""
        job = partial(func, *args, **kwargs)
        await self._open.wait()
        try:
            return await self._attempt(job)
        except BrokenProcessPool:
            pass
        self._retrying += 1
        self._open.clear()
        try:
            async with self._alone:
                return await self._attempt(job)
        except BrokenProcessPool as exc:
            raise SourceError(
                source, "the worker process reading this feed died", kind="worker_crashed"
            ) from exc
        finally:
            self._retrying -= 1
            if not self._retrying:
                self._open.set()

    async def _attempt(self, job: Callable[[], Digest]) -> Digest:
        executor = self._executor
        try:
            # The pool starts its workers on a submit; one started with the stop signals
            # blocked cannot be hit by a Ctrl-C before it has set them aside (ingest.childproc).
            with stop_signals_blocked():
                pending = asyncio.get_running_loop().run_in_executor(executor, job)
            return await pending
        except BrokenProcessPool:
            if self._executor is executor:  # the first to notice replaces it, once
                self._executor = self._new_executor()
                executor.shutdown(wait=False, cancel_futures=True)
            raise

    def close(self) -> None:
        self._executor.shutdown(cancel_futures=True)
