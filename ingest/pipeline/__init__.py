"""The pipeline: one source's way from claim to outcome, and the machinery that carries it.

- ``runner``: ``Pass``, the path of one source (its docstring draws it), the only place that
  calls fetch, digest, the policy and the store in turn;
- ``acquire``: fetch or read one source and digest it, storing nothing: the first half of a
  check, which ``Pass`` takes for each source and ``ingest parse`` alone;
- ``workers``: the ``Digester``, where documents are digested: worker processes, or a thread;
- ``childproc``: what a worker process does at its start (signals, its parent's death);
- ``writer``: the one thread that writes to the store, with group commit;
- ``deliver``: the hook deliveries queued with the posts (the outbox), delivered apart from
  the path.

May import the vocabulary, the rules (``ingest.identity``, ``scheduler.policy``,
``ingest.config``, ``ingest.hooks``), ``storage``'s facade, ``ingest.digest`` and the adapters
(``ingest.fetch``, ``ingest.publish``, ``scheduler.lease``); only the drivers
(``scheduler.driver``, ``scheduler.daemon``, ``ingest.cli``) import it.
"""
