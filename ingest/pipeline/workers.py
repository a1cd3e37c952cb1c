"""Where documents are digested to posts: worker processes, or one thread for small passes.

Workers are fresh interpreters ("spawn") that import only what digest needs
(``ingest.digest.document``: feedparser, nh3, python-frontmatter), not the command line, the store
or the HTTP stack, so each stays near 30 MB. (A forked worker would inherit the whole program; a
fork server would be one more process of the same size.)

A worker that dies (out of memory, killed) breaks the whole pool, failing every digest in
flight. The pool is then replaced once, and each digest it broke is tried once more in the
new one, alone (other digests wait meanwhile): the healthy documents go through; the one
that kills a worker again is what failed, and it fails alone. Workers leave signals to this
process and exit when it dies (``ingest.pipeline.childproc``).

A digest may take ``DIGEST_LIMIT_S`` of wall time: ``ingest.digest.document``'s CPU budget is
checked between entries, this also bounds the parse and any single entry. It is timed from
when the digest is handed to the pool, and at most one more than there are workers is
handed over at once, so the time is spent digesting, not queueing behind others. Past the
limit its source fails and the pool's workers are killed; the pool is replaced as after a
crash, and the other digests it had are tried again. A thread cannot be stopped: in a
small pass, a digest past the limit is abandoned (to a daemon thread, which does not hold
the process's exit) and the digests after it go to a worker process, where the next such
document can be stopped.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Any, ParamSpec, TypeVar

from ingest.digest import DIGEST_BUDGET_S
from ingest.errors import ErrorKind, SourceError
from ingest.pipeline.childproc import prepare_worker, stop_signals_blocked
from ingest.types import Digest

DIGEST_LIMIT_S = 2 * DIGEST_BUDGET_S
"""Wall seconds one digest may take: twice its CPU budget, so a legitimate document that
spends the whole budget on a machine busy with other work still gets through. The budget ends
ordinary digests long before; this ends the parse or the entry that runs on regardless."""

P = ParamSpec("P")
T = TypeVar("T")


class Digester:
    """Runs ``ingest.digest.document`` functions off the event loop, each for at most ``limit_s``
    seconds; ``close`` when done."""

    def __init__(self, workers: int, *, limit_s: float = DIGEST_LIMIT_S) -> None:
        self.workers = workers
        self.limit_s = limit_s
        self._executor: Executor | None = None
        """Made for the first digest: a pass of 304s starts no process (not even
        multiprocessing's resource tracker)."""
        self._handed = asyncio.Semaphore(workers + 1)  # one digest per worker, one waiting
        self._alone = asyncio.Lock()
        self._open = asyncio.Event()  # cleared while retries run, one at a time
        self._open.set()
        self._retrying = 0

    def _new_executor(self) -> Executor:
        if not self.workers:
            return _DaemonThreads()
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
        """``func(*args, **kwargs)`` in a worker; a worker dying twice on it, or it running
        past the limit, fails ``source``."""
        job = partial(func, *args, **kwargs)
        await self._open.wait()
        try:
            return await self._attempt(source, job)
        except BrokenProcessPool:
            pass
        self._retrying += 1
        self._open.clear()
        try:
            async with self._alone:
                return await self._attempt(source, job)
        except BrokenProcessPool as exc:
            raise SourceError(
                source, "the worker process reading this feed died", kind=ErrorKind.WORKER_CRASHED
            ) from exc
        finally:
            self._retrying -= 1
            if not self._retrying:
                self._open.set()

    async def _attempt(self, source: str, job: Callable[[], Digest]) -> Digest:
        async with self._handed:
            executor = self._executor = self._executor or self._new_executor()
            limit = asyncio.timeout(self.limit_s)
            try:
                # The pool starts its workers on a submit; one started with the stop signals
                # blocked cannot be hit by a Ctrl-C before it has set them aside
                # (ingest.pipeline.childproc).
                with stop_signals_blocked():
                    pending = asyncio.get_running_loop().run_in_executor(executor, job)
                async with limit:
                    return await pending
            except BrokenProcessPool:
                self._replace(executor)
                raise
            except TimeoutError:
                if not limit.expired():
                    raise  # the digest's own error: a bug, not a slow document
                raise self._stop(source, executor) from None

    def _stop(self, source: str, executor: Executor) -> SourceError:
        """The error of ``source``, whose digest in ``executor`` ran past the limit, once
        that digest is stopped. A thread cannot be: it is abandoned, and the digests
        after it go to a worker process, so that a second such document is stopped."""
        stopped = isinstance(executor, ProcessPoolExecutor)
        if not stopped:
            self.workers = 1
        self._replace(executor)
        fate = "the worker was stopped" if stopped else "it was abandoned"
        return SourceError(
            source,
            f"reading this feed took more than {self.limit_s:g} s; {fate}",
            kind=ErrorKind.TOO_SLOW,
        )

    def _replace(self, executor: Executor) -> None:
        """Retire ``executor`` (the next digest makes a new one) and kill its workers, once,
        whoever notices first. The digests it still had fail with ``BrokenProcessPool`` and
        ``run`` tries them again. SIGKILL, because workers ignore SIGINT and SIGTERM
        (``ingest.pipeline.childproc``); through ``_processes``, the pool's own table, until
        Python 3.14's ``kill_workers``."""
        if self._executor is not executor:
            return
        self._executor = None  # the next digest makes a new one
        if isinstance(executor, ProcessPoolExecutor):
            for process in list(executor._processes.values()):
                process.kill()
        # Not cancel_futures: a digest cancelled here would look to its caller as if the
        # caller had been cancelled; the pool's thread fails each with BrokenProcessPool instead.
        executor.shutdown(wait=False)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)


class _DaemonThreads(Executor):
    """Runs each job in a daemon thread of its own (``Digester`` hands over one at a time).

    Not ``ThreadPoolExecutor``: its threads are joined when the interpreter exits, so a thread
    abandoned at the time limit would hold the process until its digest ends.
    """

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        job = partial(fn, *args, **kwargs)
        threading.Thread(target=_settle, args=(future, job), name="digest", daemon=True).start()
        return future


def _settle(future: Future[T], job: Callable[[], T]) -> None:
    """Run ``job`` into ``future``, as an executor's thread does."""
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(job())
    except BaseException as exc:  # noqa: BLE001  (the caller's to handle, through the future)
        future.set_exception(exc)
