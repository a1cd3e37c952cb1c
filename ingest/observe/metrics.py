"""What the daemon shows the outside world: Prometheus metrics and the ``/healthz`` endpoint.

prometheus-client is imported here and nowhere else. The HTTP side is a WSGI app served by the
standard library's ``wsgiref`` from threads of its own, so a scrape or a health probe never waits
for the event loop that does the fetching (and still answers when that loop is stuck, which is
exactly when ``/healthz`` must say 503), nor for another client: each connection has a thread
and a socket timeout (``HttpEndpoint``).
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from ingest.errors import ConfigError, ErrorKind
from ingest.types import (
    Change,
    DeliveryOutcome,
    DeliveryStatus,
    PushEvent,
    SourceOutcome,
    SourceStatus,
)

HealthCheck = Callable[[], tuple[bool, str]]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60)


class Metrics:
    """The daemon's metrics, in a registry of their own (tests read them directly).

    ``hooks``: the configured hooks' names, whose delivery series start at 0.
    """

    def __init__(self, *, hooks: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry()
        self.fetches = Counter(
            "ingest_fetches",
            "Source checks, by outcome (ok, not_modified, moved, gone, retry_later, error, bug).",
            ["outcome"],
            registry=self.registry,
        )
        for status in SourceStatus:  # every labelled family shows its series from the start
            self.fetches.labels(status.value)
        self.fetch_errors = Counter(
            "ingest_fetch_errors",
            "Source checks that got no document, by kind (timeout, dns, http_status, gone, "
            "not_a_feed, store, internal...: ingest.errors.ErrorKind).",
            ["kind"],
            registry=self.registry,
        )
        for kind in ErrorKind:
            self.fetch_errors.labels(kind.value)
        self.bugs = Counter(
            "ingest_bugs",
            "Source checks that met a bug in feed-ingest (an unexpected exception, logged with "
            "its traceback as source_crashed); never a source's fault.",
            registry=self.registry,
        )
        self.posts = Counter(
            "ingest_posts",
            "Entries stored, by what storing them did (new, updated, duplicate, unchanged).",
            ["change"],
            registry=self.registry,
        )
        for change in Change:
            self.posts.labels(change.value)
        self.filtered = Counter(
            "ingest_entries_filtered",
            "Entries not stored because a keep or block rule kept them out.",
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
        self.websub = Counter(
            "ingest_websub_callbacks",
            "WebSub callbacks by what they did (ingested, bad_signature, unsigned, too_large, "
            "unknown, verified, refused, denied: ingest.types.PushEvent).",
            ["event"],
            registry=self.registry,
        )
        for event in PushEvent:
            self.websub.labels(event.value)
        self.last_tick = Gauge(
            "ingest_last_successful_tick_timestamp_seconds",
            "Unix time of the last tick that claimed its due sources.",
            registry=self.registry,
        )
        self.hook_deliveries = Counter(
            "ingest_hook_deliveries",
            "Hook delivery attempts, by hook and outcome (delivered; retry: failed, tried again "
            "later; failed: failed for the last time, given up).",
            ["hook", "outcome"],
            registry=self.registry,
        )
        self.hook_pending = Gauge(
            "ingest_hook_deliveries_pending",
            "Hook deliveries waiting (due, claimed, or waiting to be retried), at the last tick.",
            ["hook"],
            registry=self.registry,
        )
        self._hooks = tuple(hooks)
        for hook in self._hooks:
            self.hook_pending.labels(hook)
            for delivery in DeliveryStatus:
                self.hook_deliveries.labels(hook, delivery.value)

    def count_push(self, event: PushEvent) -> None:
        self.websub.labels(event.value).inc()

    def observe(self, outcome: SourceOutcome) -> None:
        if outcome.lease_lost:
            self.leases_lost.inc()
        self.fetches.labels(outcome.status.value).inc()
        if outcome.error_kind is not None:
            self.fetch_errors.labels(outcome.error_kind.value).inc()
        if outcome.status is SourceStatus.BUG:
            self.bugs.inc()
        self.fetch_duration.observe(outcome.duration_s)
        if outcome.filtered:
            self.filtered.inc(outcome.filtered)
        for change in Change:
            count = outcome.counts.get(change, 0)
            if count:
                self.posts.labels(change.value).inc(count)

    def observe_delivery(self, outcome: DeliveryOutcome) -> None:
        """Count one delivery attempt (called from the delivery worker's thread)."""
        self.hook_deliveries.labels(outcome.hook, outcome.status.value).inc()

    def hooks_pending(self, pending: Mapping[str, int]) -> None:
        """Set the pending gauge of every configured hook from the store's counts by hook."""
        for hook in self._hooks:
            self.hook_pending.labels(hook).set(pending.get(hook, 0))


def http_app(
    metrics: Metrics, health: HealthCheck, mounts: Mapping[str, WsgiApp] | None = None
) -> WsgiApp:
    """``/healthz`` (200 or 503 with the reason) and ``/metrics``; under each prefix of
    ``mounts`` (``/feeds``, ``/websub``), that app, the prefix moved to ``SCRIPT_NAME`` as WSGI
    has it; 404 elsewhere."""
    metrics_app = make_wsgi_app(metrics.registry)
    mounted = dict(mounts or {})

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        for prefix, inner in mounted.items():
            if path.startswith(prefix + "/"):
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                environ["PATH_INFO"] = path[len(prefix) :]
                return inner(environ, start_response)
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


class _Server(ThreadingMixIn, WSGIServer):
    """wsgiref's server with a daemon thread per connection, at most ``max_connections`` at once.

    A connection past the bound is closed at once: shedding it keeps the accept loop (and
    ``close``) from ever waiting on slow clients, which give their slot back within
    ``client_timeout_s`` of going quiet.
    """

    daemon_threads = True
    block_on_close = False

    def __init__(
        self, address: tuple[str, int], *, client_timeout_s: float, max_connections: int
    ) -> None:
        # An IPv6 address ("::1", or "::": every address, IPv4 too where the system allows).
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _QuietHandler)
        self.client_timeout_s = client_timeout_s
        self._slots = threading.BoundedSemaphore(max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # a client that went quiet (timed out) or away: nothing to report
        super().handle_error(request, client_address)


class _QuietHandler(WSGIRequestHandler):
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.client_timeout_s)  # each read and write

    def log_message(self, format: str, *args: Any) -> None:  # a probe every few seconds
        pass


class HttpEndpoint:
    """Serves ``app`` on ``host:port`` from daemon threads until ``close``.

    A client that sends nothing (an idle connection, a half-sent request) or reads nothing for
    ``TIMEOUT_S`` is disconnected, and holds only its own thread meanwhile, so it cannot keep a
    health probe waiting; at most ``MAX_CONNECTIONS`` are served at once.
    """

    TIMEOUT_S = 5.0
    MAX_CONNECTIONS = 32

    def __init__(
        self,
        host: str,
        port: int,
        app: Callable[..., Iterable[bytes]],
        *,
        timeout_s: float = TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        try:
            self._server = _Server(
                (host, port), client_timeout_s=timeout_s, max_connections=max_connections
            )
        except OSError as exc:
            raise ConfigError(
                "[serve] host and port",
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; another program may "
                "be using it (choose another with INGEST_SERVE_PORT or [serve] port)",
            ) from exc
        self._server.set_app(app)
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="http-endpoint", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
