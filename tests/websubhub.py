"""A WebSub hub on a loopback address, for tests: what a real hub does, in a few lines.

A subscription request (POST ``hub.mode``, ``hub.topic``, ``hub.callback``...) is answered 202,
then its intent is verified from a thread of its own: a GET to the callback with a random
challenge, which must come back as the body of a 200. A verified subscriber gets what
``publish`` sends, signed with its ``hub.secret`` (``X-Hub-Signature``), as hubs do.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode

from tests.feedserver import Loopback

LEASE_S = 86400
"""The lease this hub grants, whatever was asked."""


@dataclass(frozen=True)
class Verification:
    mode: str
    topic: str
    callback: str
    status: int
    echoed: bool


def call(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None) -> int:
    """GET (or POST ``data`` to) ``url``; the status."""
    return answer(url, data=data, headers=headers)[0]


def answer(
    url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Hub(Loopback):
    """Serves the hub at ``url("/")`` while entered; see the module docstring."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.verifications: list[Verification] = []
        self.subscribers: dict[str, dict[str, str]] = {}
        """The verified subscription request of each topic."""
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                with hub._lock:
                    hub.requests.append(form)
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                threading.Thread(target=hub._verify, args=(form,), daemon=True).start()

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        super().__init__("127.0.0.1", server)

    def _verify(self, form: dict[str, str]) -> None:
        challenge = secrets.token_hex(8)
        query = {
            "hub.mode": form["hub.mode"],
            "hub.topic": form["hub.topic"],
            "hub.challenge": challenge,
            "hub.lease_seconds": str(LEASE_S),
        }
        status, body = answer(f"{form['hub.callback']}?{urlencode(query)}")
        echoed = status == 200 and body == challenge.encode()
        with self._lock:
            self.verifications.append(
                Verification(
                    form["hub.mode"], form["hub.topic"], form["hub.callback"], status, echoed
                )
            )
            if echoed and form["hub.mode"] == "subscribe":
                self.subscribers[form["hub.topic"]] = form
            elif echoed:
                self.subscribers.pop(form["hub.topic"], None)

    def publish(self, topic: str, body: bytes, *, algorithm: str = "sha256") -> int:
        """Send ``body`` to the topic's subscriber, signed as hubs sign; its answer's status."""
        form = self.subscribers[topic]
        digest = hmac.new(form["hub.secret"].encode(), body, getattr(hashlib, algorithm))
        return self.send(topic, body, f"{algorithm}={digest.hexdigest()}")

    def send(self, topic: str, body: bytes, signature: str | None) -> int:
        """Send ``body`` to the topic's subscriber with ``signature`` as given (or none)."""
        headers = {"Content-Type": "application/rss+xml; charset=utf-8"}
        if signature is not None:
            headers["X-Hub-Signature"] = signature
        return call(self.subscribers[topic]["hub.callback"], data=body, headers=headers)
