"""Who holds a lease on a source, and whether that holder still lives (DESIGN §7).

A lease names its owner ``host:pid:start-nonce``. ``host`` is the host name and, on Linux, the
process-id namespace (``vm/4026531836``), since a pid means something only within its namespace;
``pid`` and ``start`` (the process's start time in clock ticks since boot, from
``/proc/<pid>/stat``; 0 elsewhere) name one process for good, as a pid alone is soon reused; a
few random bytes tell two passes of one process apart.

A process that crashed leaves its leases behind. Another process with the same ``host`` can see
that no process with that pid *and* that start time runs (or that it is a zombie), and takes
them over at once: a cron job after a crash, a daemon beside a killed ``ingest run``. A lease
held from another host, or from another container (a restarted container gets a new pid
namespace), cannot be checked and runs until it expires: a lease is short (``[schedule]
lease``) and renewed by its live owner every third of its length, so an expired lease means a
dead or stuck owner.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

RENEWALS_PER_LEASE = 3
"""Renewals within one lease's length: one missed renewal still keeps it."""


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
    return Owner(_host(), pid, start, secrets.token_hex(3))


def is_gone(name: str) -> bool:
    """Whether the owner ``name`` is certainly dead: a process of this host (and pid namespace)
    that is no more. False whenever that cannot be known (another host, a name we did not
    write)."""
    owner = Owner.parse(name)
    if owner is None or owner.host != _host():
        return False
    return not _running(owner.pid, owner.start)


def _host() -> str:
    """This host's name, with the pid namespace's id where there is one."""
    try:
        namespace = str((_PROC / "self" / "ns" / "pid").readlink())  # "pid:[4026531836]"
    except OSError:
        return socket.gethostname()
    return f"{socket.gethostname()}/{namespace.strip('pid:[]')}"


def _running(pid: int, start: int) -> bool:
    """Whether process ``pid``, started at ``start``, still runs; True when that cannot be told."""
    if (_PROC / "self" / "stat").exists():
        try:
            stat = (_PROC / str(pid) / "stat").read_text()
        except FileNotFoundError:
            return False
        except OSError:
            return True
        return _start_ticks(stat) == start and _state(stat) != "Z"  # a zombie has ended
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


def _state(stat: str) -> str:
    """A process's state letter (field 3 of ``/proc/<pid>/stat``): R, S, D, Z, ..."""
    return stat.rpartition(")")[2].split()[0]
