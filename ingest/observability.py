"""What the daemon shows the outside world: Prometheus metrics and the ``/healthz`` endpoint.

prometheus-client is imported here and nowhere else. The HTTP side is a WSGI app served by the
standard library's ``wsgiref`` in a thread of its own, so a scrape or a health probe never waits
for the event loop that does the fetching (and still answers when that loop is stuck, which is
exactly when ``/healthz`` must say 503).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from ingest.identity import Change
from ingest.pipeline import FeedOutcome

HealthCheck = Callable[[], tuple[bool, str]]
StartResponse = Callable[..., Any]

_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60)


class Metrics:
    """The daemon's metrics, in a registry of their own (tests read them directly)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.fetches = Counter(
            "ingest_fetches",
            "Source checks, by outcome (ok, not_modified, moved, gone, retry_later, error).",
            ["outcome"],
            registry=self.registry,
        )
        self.posts = Counter(
            "ingest_posts",
            "Entries stored, by what storing them did (new, updated, duplicate, unchanged).",
            ["change"],
            registry=self.registry,
        )
        self.fetch_duration = Histogram(
            "ingest_fetch_duration_seconds",
            "Time to check one source: fetch, parse and store.",
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.sources_due = Gauge(
            "ingest_sources_due",
            "Sources due at the last tick, whether claimed already or not: the backlog.",
            registry=self.registry,
        )
        self.sources_failing = Gauge(
            "ingest_sources_failing",
            "Enabled sources whose last check failed.",
            registry=self.registry,
        )
        self.leases_lost = Counter(
            "ingest_leases_lost",
            "Checks dropped because another process had taken their source over meanwhile.",
            registry=self.registry,
        )
        self.last_tick = Gauge(
            "ingest_last_successful_tick_timestamp_seconds",
            "Unix time of the last tick that claimed its due sources.",
            registry=self.registry,
        )

    def observe(self, outcome: FeedOutcome) -> None:
        if outcome.lease_lost:
            self.leases_lost.inc()
        self.fetches.labels(outcome.status.value).inc()
        self.fetch_duration.observe(outcome.duration_s)
        for change in Change:
            count = outcome.counts.get(change, 0)
            if count:
                self.posts.labels(change.value).inc(count)


def http_app(metrics: Metrics, health: HealthCheck) -> Callable[..., Iterable[bytes]]:
    """``/healthz`` (200 or 503 with the reason) and ``/metrics``; 404 elsewhere."""
    metrics_app = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            result: Iterable[bytes] = metrics_app(environ, start_response)
            return result
        if path == "/healthz":
            healthy, reason = health()
            status = "200 OK" if healthy else "503 Service Unavailable"
            start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
            return [reason.encode() + b"\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /healthz or /metrics\n"]

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # a probe every few seconds
        pass


class HttpEndpoint:
    """Serves ``app`` on ``host:port`` from a daemon thread until ``close``."""

    def __init__(self, host: str, port: int, app: Callable[..., Iterable[bytes]]) -> None:
        self._server: WSGIServer = make_server(host, port, app, handler_class=_QuietHandler)
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="http-endpoint", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
