"""What leaves the store as files, and the one file format that comes back in.

- ``render``: a post as its front-matter file (DESIGN §1) and as JSON;
- ``export``: posts written to a folder, atomically and idempotently (``hexo`` or ``flat``);
- ``opml``: sources out to OPML 2.0, and OPML in (untrusted: http(s) sources only).

Pure apart from the files ``export`` writes: may import the vocabulary, ``ingest.config`` and
``ingest.digest.encoding`` (an OPML file is decoded like a feed).
"""
