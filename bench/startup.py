"""How fast ``ingest`` starts: the median wall time of whole processes, the way a user or a
container's health check pays it.

    .venv/bin/python bench/startup.py            # 5 runs each
    .venv/bin/python bench/startup.py --runs 9

Measures ``ingest --help`` and ``ingest run`` with nothing due (a store whose one source, the
shipped seed, was just checked) in a scratch folder, next to a bare ``python -c pass`` for the
interpreter's own share. ``python -X importtime -m ingest run`` shows where the rest goes.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INGEST = [sys.executable, "-m", "ingest"]


def medians_s(command: list[str], cwd: Path, runs: int) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of ``runs`` processes; CPU time
    is the steadier figure on a machine shared with other work."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, capture_output=True)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="processes per command (median)")
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as scratch:
        cwd = Path(scratch)
        subprocess.run([*INGEST, "run"], cwd=cwd, check=True, capture_output=True)
        for label, command in (
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("ingest --help", [*INGEST, "--help"]),
            ("ingest run (nothing due)", [*INGEST, "run"]),
        ):
            wall, cpu = medians_s(command, cwd, runs)
            print(f"{label:<26} {wall:.3f} s wall, {cpu:.3f} s CPU (medians of {runs})")


if __name__ == "__main__":
    main()
