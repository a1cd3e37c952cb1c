"""What leaves the store as files, and the one file format that comes back in.

- ``render``: a post as its front-matter file (DESIGN §1) and as JSON;
- ``export``: posts written to a folder, atomically and idempotently (``hexo`` or ``flat``);
- ``opml``: sources out to OPML 2.0, and OPML in (untrusted: http(s) sources only);
- ``merged``: what a merged feed (a category's, a source's, everything's) holds, from the store;
  ``syndicate``: it written as Atom 1.0 or JSON Feed 1.1; ``feedapp``: it served at ``/feeds/``.

Pure apart from the files ``export`` writes and the store ``merged`` and ``feedapp`` read
(through the ``storage`` facade): may import the vocabulary, ``ingest.config``,
``ingest.digest.encoding`` (an OPML file is decoded like a feed) and ``storage``.
"""
