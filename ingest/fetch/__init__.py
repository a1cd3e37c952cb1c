"""Getting a source's bytes: over HTTP like a good citizen, or from a local file or folder.

One module per concern, in the order a fetch goes through them:

- ``client``: the ``Fetcher`` (the process's one ``httpx.AsyncClient``, its limits and headers)
  and the redirect loop; the only module that calls httpx for requests, and the one that turns
  httpx's exceptions into a ``Failed`` with its kind;
- ``network``: the SSRF-guarded network backend behind one function, ``guarded_transport``,
  with every reach into httpcore's and anyio's internals; ``guard``: its address policy (pure);
- ``classify``: what an answer means, a pure function of status, headers and ``now``;
- ``body``: the body read with its size capped after decompression, in bounded steps;
- ``webhook``: POSTs to the webhooks of ``[[hooks]]``, through the same guarded network;
- ``local``: local sources (a feed file, a front-matter post, a folder of them), read with limits.

May import ``ingest.config``, ``ingest.errors``, ``ingest.types``, ``ingest.urls`` and the libraries
it wraps (httpx, httpcore, anyio, brotli); nothing of the pipeline, the store or the scheduler.
Expected outcomes are returned as values (``ingest.types.FetchResult``); ``local`` raises
SourceError, which the pipeline turns into a value.
"""
