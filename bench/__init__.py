"""The benchmark harness: feed-ingest against lemon24/reader on one loopback feed farm.

- ``bench.corpus``: deterministic feed documents and post bodies (seeded, mixed Chinese/English).
- ``bench.farm``: the loopback HTTP(S) server that serves them, with ETags and 304s.
- ``bench.topology``: the farm settings compared (one host, 64 hosts, gzip, latency, TLS, corpus).
- ``bench.runner``: one pass of one tool, run in its own process so its memory is its own.
- ``bench.measure``: timed subprocesses, their tree's CPU time and sampled RSS.
- ``bench.passes``: one tool's cold, all-304 and steady passes on a fresh store, checked.
- ``bench.stages``: parse / normalize / store entries per second, in-process, one core.
- ``bench.search``: search latency over a generated store of a million posts.
- ``bench.compare``: the entry point that runs all of the above and prints the table.
- ``bench.report``: renders result files into ``docs/performance.md``.
- ``bench.profiling``: py-spy profiles of our passes, summarized by process and function.

Nothing here is imported by ``ingest``, ``storage`` or ``scheduler``; reader, psutil, py-spy
and trustme come from the ``bench`` extra only.
"""
