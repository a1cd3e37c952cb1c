"""What a conversion worker process does before its first job: it belongs to its parent.

Signals are the parent's business. Ctrl-C reaches every process of the terminal's foreground
group, and a service manager may send SIGTERM to every process of the service; the parent
then stops taking work and shuts its workers down itself, so they ignore both (a worker killed
mid-conversion would only print a traceback and break the pool). A worker whose parent died
without shutting it down (SIGKILL, out of memory) notices within ``PARENT_CHECK_S`` and exits,
so nothing of ours is left running with PID 1 as its parent.

Imported by every worker: it must stay this small.
"""

from __future__ import annotations

import os
import signal
import threading
import time

PARENT_CHECK_S = 0.5


def prepare_worker(parent_pid: int) -> None:
    """``ProcessPoolExecutor``'s initializer: ignore stop signals, follow the parent out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(
        target=_exit_with_parent, args=(parent_pid,), name="parent-watch", daemon=True
    ).start()


def _exit_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_S)
    os._exit(1)
