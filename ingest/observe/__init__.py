"""What the program shows of itself while it runs.

- ``logs``: structlog configured once (by the CLI): pretty on a terminal, JSON lines otherwise,
  every URL redacted on its way out;
- ``metrics``: Prometheus metrics and the ``/healthz`` and ``/metrics`` endpoint of
  ``ingest serve``: the only module that imports prometheus-client.

May import the vocabulary only; the pipeline and the drivers feed it outcomes.
"""
