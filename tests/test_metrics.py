"""The daemon's HTTP endpoint: answers probes whatever other clients do, where it is told to."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import pytest

from ingest.config import load_settings
from ingest.errors import ErrorKind
from ingest.observe.metrics import HttpEndpoint, Metrics, http_app
from ingest.types import SourceOutcome, SourceStatus


@pytest.fixture
def endpoint() -> Iterator[HttpEndpoint]:
    serving = HttpEndpoint("127.0.0.1", 0, http_app(Metrics(), lambda: (True, "ok")))
    yield serving
    serving.close()


def healthz(host: str, port: int) -> str:
    with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=1) as response:
        body: bytes = response.read()
    return body.decode()


def test_healthz_answers_while_idle_connections_stay_open(endpoint: HttpEndpoint) -> None:
    with ExitStack() as idle:
        for _ in range(3):
            idle.enter_context(socket.create_connection(("127.0.0.1", endpoint.port)))
        half = idle.enter_context(socket.create_connection(("127.0.0.1", endpoint.port)))
        half.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # a request that never ends

        started = time.monotonic()
        assert healthz("127.0.0.1", endpoint.port) == "ok\n"
        assert time.monotonic() - started < 1


def test_the_endpoint_listens_on_an_ipv6_address_when_given_one() -> None:
    endpoint = HttpEndpoint("::1", 0, http_app(Metrics(), lambda: (True, "ok")))
    try:
        assert healthz("[::1]", endpoint.port) == "ok\n"
    finally:
        endpoint.close()


def test_silent_clients_are_disconnected_and_extra_ones_shed_at_once() -> None:
    app = http_app(Metrics(), lambda: (True, "ok"))
    endpoint = HttpEndpoint("127.0.0.1", 0, app, timeout_s=0.5, max_connections=2)
    try:
        with ExitStack() as idle:
            silent = [
                idle.enter_context(socket.create_connection(("127.0.0.1", endpoint.port)))
                for _ in range(2)
            ]
            extra = idle.enter_context(socket.create_connection(("127.0.0.1", endpoint.port)))
            extra.settimeout(0.4)
            assert extra.recv(1) == b""  # closed at once: both slots are taken

            started = time.monotonic()
            for client in silent:
                client.settimeout(3)
                assert client.recv(1) == b""  # closed by the server when its time ran out
            assert time.monotonic() - started < 1.5
            assert healthz("127.0.0.1", endpoint.port) == "ok\n"
    finally:
        endpoint.close()


def test_the_endpoint_listens_on_loopback_only_unless_told_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./ingest.toml: the built-in defaults
    settings = load_settings(None, env={})
    endpoint = HttpEndpoint(settings.serve.host, 0, http_app(Metrics(), lambda: (True, "ok")))
    try:
        assert healthz("127.0.0.1", endpoint.port) == "ok\n"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.2", endpoint.port), timeout=1).close()
    finally:
        endpoint.close()

    moved = load_settings(None, env={"INGEST_SERVE_HOST": "127.0.0.2"})
    assert moved.serve.host == "127.0.0.2"


def _outcome(status: SourceStatus, kind: ErrorKind | None) -> SourceOutcome:
    return SourceOutcome(
        1, "https://x.example/feed", status, Counter(), 0, "why", 0.1, error_kind=kind
    )


def test_failed_checks_are_counted_by_kind_and_bugs_apart() -> None:
    metrics = Metrics()
    metrics.observe(_outcome(SourceStatus.ERROR, ErrorKind.TIMEOUT))
    metrics.observe(_outcome(SourceStatus.ERROR, ErrorKind.TIMEOUT))
    metrics.observe(_outcome(SourceStatus.GONE, ErrorKind.GONE))
    metrics.observe(_outcome(SourceStatus.BUG, ErrorKind.INTERNAL))
    metrics.observe(_outcome(SourceStatus.OK, None))

    def sample(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert sample("ingest_fetch_errors_total", kind="timeout") == 2
    assert sample("ingest_fetch_errors_total", kind="gone") == 1
    assert sample("ingest_fetch_errors_total", kind="dns") == 0  # every kind is there from 0
    assert sample("ingest_bugs_total") == 1
    assert sample("ingest_fetches_total", outcome="bug") == 1
    assert sample("ingest_fetches_total", outcome="ok") == 1


def test_filtered_entries_are_counted_from_zero() -> None:
    metrics = Metrics()
    assert metrics.registry.get_sample_value("ingest_entries_filtered_total") == 0
    metrics.observe(replace(_outcome(SourceStatus.OK, None), filtered=3))
    assert metrics.registry.get_sample_value("ingest_entries_filtered_total") == 3
