"""When things run.

- ``policy``: when a source is due and what a check changes on it (pure: clock and randomness
  passed in); may import the vocabulary and ``ingest.config``;
- ``lease``: who this process is (host, pid, start) and whether a lease holder still runs;
- ``driver``: the one driver of ``ingest run`` and of every daemon tick: claims in batches,
  runs ``ingest.pipeline``, stops cleanly on signals;
- ``daemon``: ``ingest serve``: APScheduler's ticks, ``/healthz`` and ``/metrics``.

``driver`` and ``daemon`` are drivers (they may import anything); nothing below them imports
them (``tests/test_layers.py``).
"""
