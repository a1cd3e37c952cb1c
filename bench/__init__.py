"""The benchmark harness: feed-ingest against lemon24/reader on one loopback feed farm.

- ``bench.corpus``: deterministic feed documents and post bodies (seeded, mixed Chinese/English).
- ``bench.farm``: the loopback HTTP server that serves them, with ETags and 304s.
- ``bench.runner``: one pass of one tool, run in its own process so its memory is its own.
- ``bench.measure``: process-tree RSS sampling and timed subprocesses.
- ``bench.stages``: parse / normalize / store entries per second, in-process, one core.
- ``bench.search``: search latency over a generated store of a million posts.
- ``bench.compare``: the entry point that runs all of the above and prints the table.
- ``bench.report``: renders result files into ``docs/performance.md``.
- ``bench.profiling``: py-spy profiles of our passes, summarized by process and function.

Nothing here is imported by ``ingest``, ``storage`` or ``scheduler``; reader, psutil and py-spy
come from the ``bench`` extra only.
"""
