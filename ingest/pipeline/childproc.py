"""What a digest worker process does before its first job: it belongs to its parent.

Signals are the parent's business. Ctrl-C reaches every process of the terminal's foreground
group, and a service manager may send SIGTERM to every process of the service; the parent
then stops taking work and shuts its workers down itself, so they ignore both (a worker killed
mid-digest would only print a traceback and break the pool). A worker whose parent died
without shutting it down (SIGKILL, out of memory) notices within ``PARENT_CHECK_S`` and exits,
so nothing of ours is left running with PID 1 as its parent.

Imported by every worker: it must stay this small.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

PARENT_CHECK_S = 0.5


STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextmanager
def stop_signals_blocked() -> Iterator[None]:
    """Block SIGINT and SIGTERM in this thread meanwhile (a process started now inherits the
    mask, and so cannot die of them before ``prepare_worker`` ignores them); a signal that
    arrives meanwhile is delivered when they are unblocked."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def prepare_worker(parent_pid: int) -> None:
    """``ProcessPoolExecutor``'s initializer: ignore stop signals, follow the parent out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # pending ones are dropped: ignored
    threading.Thread(
        target=_exit_with_parent, args=(parent_pid,), name="parent-watch", daemon=True
    ).start()


def _exit_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_S)
    os._exit(1)
