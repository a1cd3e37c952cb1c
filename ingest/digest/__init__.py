"""Digest: a source's bytes become posts. The CPU-bound step of a pass, run in worker processes.

In the order a document goes through it:

- ``document``: the step itself (``digest_feed``, ``digest_posts``) with its CPU budget;
- ``encoding``: the bytes' character encoding, declared or sniffed;
- ``parse``: feed documents (RSS, Atom, JSON Feed through feedparser) and front-matter posts
  to ``RawFeed``/``RawEntry``: the only module that calls feedparser;
- ``prefilter``: nested elements an item does not own hidden from both parsers;
- ``fast``: well-formed RSS and Atom read with lxml exactly as feedparser reads them (parse
  tries it first; it declines what it cannot match): the only module that imports lxml;
- ``dates``: the dates entries carry, read by our rules, feedparser's reading a second opinion;
- ``sanitize``: HTML made safe to store and publish: the only module that imports nh3;
- ``normalize``: a raw entry to a ``Post`` in the schema of DESIGN §1.

Pure: functions of their input and a ``now`` passed in, no network, store or clock. May import
the vocabulary (``ingest.types``, ``ingest.errors``, ``ingest.urls``), ``ingest.identity`` and
``ingest.filters`` (the keep and block rules, applied here, in the workers);
its values are plain and picklable, since they cross from worker processes.
"""

DIGEST_BUDGET_S = 10.0
"""CPU seconds one feed document may take to digest (``ingest.digest.document``): 4,000
ordinary entries (17 MiB) take 3.5 here; the 2.2 MB document built to stall the sanitizer took
127. Kept here, not in ``document``, so the pool that enforces it (``ingest.pipeline.workers``)
does not load the parsers in a process that digests nothing."""
