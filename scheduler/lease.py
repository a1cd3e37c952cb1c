"""Who holds a lease on a source, and whether that holder still lives (DESIGN §7).

A lease names its owner ``host:pid:start-nonce``: the host name, the process id, the process's
start time in clock ticks since boot (Linux ``/proc/<pid>/stat``; 0 elsewhere) and a few random
bytes that tell two passes of one process apart. A process that crashed leaves its leases
behind; on the same host they are free at once, since anyone there can see that no process with
that pid *and* that start time exists (a pid alone is soon reused, a start time is not). A lease
held from another host cannot be checked and runs until it expires: a lease is short (about two
fetch timeouts) and renewed by its live owner every third of its length, so an expired lease
means a dead or stuck owner.

Replicas must therefore have distinct host names, which Docker, Compose and Kubernetes give
them unless told otherwise.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

RENEWALS_PER_LEASE = 3
"""Renewals within one lease's length: a missed renewal or two still keep it."""


@dataclass(frozen=True, slots=True)
class Owner:
    """A process that can hold leases, as its lease rows name it."""

    host: str
    pid: int
    start: int
    nonce: str

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.start}-{self.nonce}"

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        """The owner a lease row names; None for a name this code did not write."""
        host, _, rest = text.rpartition(":")
        host, _, pid = host.rpartition(":")
        start, _, nonce = rest.partition("-")
        if not (host and pid.isdigit() and start.isdigit() and nonce):
            return None
        return cls(host, int(pid), int(start), nonce)


def this_process() -> Owner:
    """A new owner name for this process: each pass of a process gets its own nonce."""
    pid = os.getpid()
    stat = _PROC / str(pid) / "stat"
    start = _start_ticks(stat.read_text()) if stat.exists() else 0
    return Owner(socket.gethostname(), pid, start, secrets.token_hex(3))


def is_gone(name: str, *, host: str | None = None) -> bool:
    """Whether the owner ``name`` is certainly dead: a process of this host that is no more.

    False whenever that cannot be known (another host, a name we did not write).
    """
    owner = Owner.parse(name)
    if owner is None or owner.host != (host or socket.gethostname()):
        return False
    if owner.pid == os.getpid():
        return False  # this very process: its other passes end their own leases
    return not _running(owner.pid, owner.start)


def _running(pid: int, start: int) -> bool:
    """Whether process ``pid``, started at ``start``, still runs; True when that cannot be told."""
    if (_PROC / "self" / "stat").exists():
        try:
            return _start_ticks((_PROC / str(pid) / "stat").read_text()) == start
        except FileNotFoundError:
            return False
        except OSError:
            return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by another user
    return True


def renew_every(lease_s: float) -> float:
    """Seconds between two renewals of a live owner's leases."""
    return lease_s / RENEWALS_PER_LEASE


_PROC = Path("/proc")


def _start_ticks(stat: str) -> int:
    """A process's start time, in clock ticks since boot, from its ``/proc/<pid>/stat``.

    The command name (field 2) is in parentheses and may hold spaces; the start is field 22.
    """
    return int(stat.rpartition(")")[2].split()[19])
