"""Running a command while sampling the memory of its whole process tree.

A pass of ours is a main process plus parsing workers; reader's is one process with threads.
Both are measured the same way: the wall time and CPU time of the whole process (start-up and
exit included), and every ``SAMPLE_S`` the RSS and PSS of the process and all its
descendants are read (``/proc`` through psutil) and summed, and the peaks kept. The RSS sum is
the conservative figure (pages a forked worker shares with its parent count twice); PSS splits
shared pages between the processes that map them, so it is what the tree really costs. The
process list is refreshed every ``TREE_REFRESH_S``: scanning ``/proc`` for children is the
expensive part, and workers live for the whole pass.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil

SAMPLE_S = 0.05
TREE_REFRESH_S = 0.25
MB = 1024 * 1024
_PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy"})


@dataclass(frozen=True, slots=True)
class Sampled:
    """How a command went: exit code, wall time, its tree's CPU time and peak memory."""

    returncode: int
    wall_s: float
    cpu_user_s: float
    cpu_system_s: float
    peak_rss_mb: float
    peak_pss_mb: float
    peak_processes: int

    @property
    def cpu_s(self) -> float:
        return self.cpu_user_s + self.cpu_system_s


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a measured child: no ``INGEST_*`` settings, no proxies.

    A stray ``INGEST_SOURCES`` would replace the bench config's sources, and a proxy would put
    a third process between the tools and the farm.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("INGEST_") and name.lower() not in _PROXY_VARIABLES
    }
    env.update(extra or {})
    return env


def run_sampled(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    stdout: IO[str] | int | None = None,
    stderr: IO[str] | int | None = None,
    cwd: Path | None = None,
    timeout_s: float = 3600,
) -> Sampled:
    """Run ``command`` to the end, sampling its process tree's memory; kill it past the timeout.

    The wall time runs from just before the process is started to the moment it is reaped (a
    thread waits for it, so the sampling interval does not round it). The CPU time is what the
    process and every descendant it waited for used (``RUSAGE_CHILDREN`` of this process
    before and after: this process waits for nothing else meanwhile).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = psutil.Popen(list(command), env=dict(env), stdout=stdout, stderr=stderr, cwd=cwd)
    ended: list[float] = []

    def reap() -> None:
        process.wait()
        ended.append(time.perf_counter())

    waiter = threading.Thread(target=reap, daemon=True)
    waiter.start()
    tree: list[psutil.Process] = [process]
    refreshed = 0.0
    peak_rss = peak_pss = 0
    peak_processes = 1
    while waiter.is_alive():
        now = time.perf_counter()
        if now - started > timeout_s:
            _kill_tree(process)
            raise TimeoutError(f"{command[:4]} ran for more than {timeout_s:g} s")
        if now - refreshed >= TREE_REFRESH_S:
            tree = _tree(process) or tree
            refreshed = now
        rss, pss, alive = _tree_memory(tree)
        peak_rss = max(peak_rss, rss)
        peak_pss = max(peak_pss, pss)
        peak_processes = max(peak_processes, alive)
        waiter.join(SAMPLE_S)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Sampled(
        returncode=process.returncode,
        wall_s=ended[0] - started,
        cpu_user_s=after.ru_utime - before.ru_utime,
        cpu_system_s=after.ru_stime - before.ru_stime,
        peak_rss_mb=peak_rss / MB,
        peak_pss_mb=peak_pss / MB,
        peak_processes=peak_processes,
    )


def _tree(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return []


def _tree_memory(tree: Sequence[psutil.Process]) -> tuple[int, int, int]:
    rss = pss = alive = 0
    for member in tree:
        try:
            info = member.memory_full_info()
        except psutil.Error:  # ended between the listing and the reading
            continue
        rss += info.rss
        pss += info.pss
        alive += 1
    return rss, pss, alive


def _kill_tree(process: psutil.Process) -> None:
    for member in reversed(_tree(process)):
        try:
            member.kill()
        except psutil.Error:
            continue
    process.wait()


def machine_busy_s() -> float:
    """CPU seconds all processes on the machine have used so far, in user and system mode.

    Interrupt and softirq time is left out: loopback traffic is processed there and belongs
    to no process, so it would look like someone else's load.
    """
    times = psutil.cpu_times()
    return float(times.user + times.nice + times.system)


def own_cpu_s() -> float:
    """CPU seconds of this process (the measuring one) so far."""
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def run_checked(
    command: Sequence[str], *, env: Mapping[str, str], timeout_s: float = 3600
) -> subprocess.CompletedProcess[str]:
    """Run an unmeasured helper command; its output, or RuntimeError with its stderr."""
    done = subprocess.run(
        list(command), env=dict(env), capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed ({done.returncode}):\n{done.stderr}")
    return done
