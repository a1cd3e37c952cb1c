"""Hooks as a user meets them: ``ingest run`` and ``ingest serve`` telling a real webhook on
127.0.0.1 and a real command about new and updated posts, with retries, the address guard,
``ingest stats``, the metrics, and a run killed between storing and delivering."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tests.conftest import SEED, Cli, write_config
from tests.feedserver import FeedServer, Reply, Seen, rss
from tests.test_daemon import INGEST, Serve, free_port, get, metric, wait_for

SECRET = "s3cret"
FEED = rss("Tech", ("1", "one"), ("2", "two"))


def chat_hook(server: FeedServer, **settings: Any) -> dict[str, Any]:
    return {
        "name": "chat",
        "on": ["new", "updated"],
        "webhook": server.url("/hook"),
        "secret": SECRET,
        **settings,
    }


def received(server: FeedServer) -> list[dict[str, Any]]:
    return [json.loads(seen.body) for seen in server.requests_to("/hook")]


def test_a_webhook_hears_of_each_new_and_updated_post_once_signed(
    tmp_path: Path, sqlite_url: str
) -> None:
    with FeedServer() as server:
        server.routes["/feed.xml"] = Reply(200, FEED)
        server.routes["/hook"] = Reply(204)
        server.routes["/sports"] = Reply(204)
        config = write_config(
            tmp_path,
            [{"url": server.url("/feed.xml"), "categories": ["Tech"]}],
            hooks=[
                chat_hook(server, categories=["tech"]),
                {
                    "name": "sports",
                    "on": ["new"],
                    "webhook": server.url("/sports"),
                    "categories": ["sports"],
                },
            ],
            fetch={"allow_hosts": ["127.0.0.1"]},
        )
        cli = Cli(sqlite_url, config)
        result = cli("run")
        assert result.exit_code == 0, result.stdout
        assert "hooks: 2 delivered, 0 to be retried, 0 given up; 0 pending" in result.stdout

        for seen in server.requests_to("/hook"):
            document = json.loads(seen.body)
            ident = f"{document['id']}-1-chat"
            assert document["event"] == "new"
            assert document["delivery_id"] == ident
            assert seen.headers["content-type"] == "application/json"
            assert seen.headers["idempotency-key"] == seen.headers["x-ingest-delivery"] == ident
            mac = hmac.new(SECRET.encode(), seen.body, hashlib.sha256).hexdigest()
            assert seen.headers["x-ingest-signature"] == f"sha256={mac}"
            shown = cli("entries", "show", str(document["id"]), "--json").json()
            assert {k: v for k, v in document.items() if k in shown} == shown
        assert sorted(d["title"] for d in received(server)) == ["Tech 1", "Tech 2"]
        assert server.requests_to("/sports") == []

        assert cli("run", "--all").exit_code == 0  # nothing new: nothing is sent again
        assert len(server.requests_to("/hook")) == 2

        server.routes["/feed.xml"] = Reply(200, rss("Tech", ("1", "one, edited"), ("2", "two")))
        assert cli("run", "--all").exit_code == 0
        update = received(server)[2:]
        assert [(d["event"], d["revision"], d["delivery_id"]) for d in update] == [
            ("updated", 2, f"{update[0]['id']}-2-chat")
        ]
        stats = cli("stats").stdout
        assert "hook chat: 0 pending, 3 delivered, 0 failed" in stats


def test_the_address_guard_refuses_a_private_webhook_unless_allowed(
    tmp_path: Path, sqlite_url: str
) -> None:
    with FeedServer() as server:
        server.routes["/hook"] = Reply(204)
        config = write_config(tmp_path, [{"url": str(SEED)}], hooks=[chat_hook(server)])
        cli = Cli(sqlite_url, config)
        result = cli("run")
        assert result.exit_code == 0  # a hook's failure is not a source's
        assert "a loopback address; fetching it is refused" in result.stdout
        assert "hooks: 0 delivered, 1 to be retried, 0 given up; 1 pending" in result.stdout
        assert server.seen == []
        stats = cli("stats", "--json").json()
        (hook,) = stats["hooks"]
        assert (hook["hook"], hook["pending"], hook["delivered"]) == ("chat", 1, 0)
        assert "refused to protect your network" in hook["last_error"]


def test_a_failed_delivery_is_retried_with_the_same_key_until_it_is_taken(
    tmp_path: Path, sqlite_url: str
) -> None:
    answered: Counter[str] = Counter()

    def flaky(seen: Seen) -> Reply:
        key = seen.headers["idempotency-key"]
        answered[key] += 1
        return Reply(500 if answered[key] == 1 else 200)

    with FeedServer() as server:
        server.routes["/feed.xml"] = Reply(200, FEED)
        server.routes["/hook"] = flaky
        config = write_config(
            tmp_path,
            [{"url": server.url("/feed.xml")}],
            hooks=[chat_hook(server)],
            fetch={"allow_private_networks": True},
            delivery={"backoff": "100ms", "run_budget": "20s"},
        )
        cli = Cli(sqlite_url, config)
        result = cli("run")
        assert "hooks: 2 delivered, 0 to be retried, 0 given up; 0 pending" in result.stdout
        assert sorted(answered.values()) == [2, 2]
        by_key: dict[str, set[bytes]] = {}
        for seen in server.requests_to("/hook"):
            by_key.setdefault(seen.headers["idempotency-key"], set()).add(seen.body)
        assert all(len(bodies) == 1 for bodies in by_key.values())  # the same body both times


def test_a_delivery_failing_every_time_is_given_up_and_shown(
    tmp_path: Path, sqlite_url: str
) -> None:
    with FeedServer() as server:
        server.routes["/hook"] = Reply(500)
        config = write_config(
            tmp_path,
            [{"url": str(SEED)}],
            hooks=[chat_hook(server)],
            fetch={"allow_hosts": ["127.0.0.1"]},
            delivery={"backoff": "50ms", "max_attempts": 3},
        )
        cli = Cli(sqlite_url, config)
        result = cli("run")
        assert result.exit_code == 0
        assert ": HTTP 500 (given up)" in result.stdout
        assert len(server.requests_to("/hook")) == 3
        stats = cli("stats").stdout
        assert "hook chat: 0 pending, 0 delivered, 1 failed" in stats
        assert "last error (" in stats
        assert "): HTTP 500" in stats
        assert cli("run").exit_code == 0
        assert len(server.requests_to("/hook")) == 3  # given up stays given up


HOOK_SCRIPT = """\
import json, pathlib, sys
post = json.load(sys.stdin)
pathlib.Path("got").mkdir(exist_ok=True)
pathlib.Path("got", post["delivery_id"] + ".json").write_text(json.dumps(post))
"""


def test_an_exec_hook_gets_the_post_as_json_on_stdin(tmp_path: Path, sqlite_url: str) -> None:
    (tmp_path / "notify.py").write_text(HOOK_SCRIPT)
    config = write_config(
        tmp_path,
        [{"url": str(SEED)}],
        hooks=[{"name": "script", "on": ["new"], "exec": [sys.executable, "notify.py"]}],
    )
    cli = Cli(sqlite_url, config)
    result = cli("run")
    assert "hooks: 1 delivered" in result.stdout
    (written,) = (tmp_path / "got").iterdir()  # relative paths: from the config's folder
    post = json.loads(written.read_text())
    assert written.name == f"{post['id']}-1-script.json"
    assert post["event"] == "new"
    shown = cli("entries", "show", str(post["id"]), "--json").json()
    assert {k: v for k, v in post.items() if k in shown} == shown


def test_an_exec_hook_that_fails_or_overruns_is_retried_with_its_reason(
    tmp_path: Path, sqlite_url: str
) -> None:
    fails = "import sys; sys.stdin.read(); sys.stderr.write('no route to chat'); sys.exit(3)"
    config = write_config(
        tmp_path,
        [{"url": str(SEED)}],
        hooks=[
            {"name": "fails", "on": ["new"], "exec": [sys.executable, "-c", fails]},
            {
                "name": "slow",
                "on": ["new"],
                "exec": [sys.executable, "-c", "import time; time.sleep(60)"],
                "timeout": "1s",
            },
        ],
    )
    result = Cli(sqlite_url, config)("run")
    assert result.exit_code == 0
    assert "-1-fails: exit status 3: no route to chat (to be retried)" in result.stdout
    assert "-1-slow: still running after 1s (the hook's timeout); killed" in result.stdout


def _outbox(db: Path) -> list[tuple[str, str]]:
    try:
        with sqlite3.connect(db) as conn:
            return list(conn.execute("SELECT hook, status FROM hook_deliveries"))
    except sqlite3.OperationalError:  # not created yet
        return []


def test_a_run_killed_after_storing_leaves_exactly_its_deliveries_to_the_next_run(
    tmp_path: Path, sqlite_url: str
) -> None:
    """Posts and their deliveries are committed together: the killed run delivered nothing,
    and the next one delivers each of them once (and the posts it stores itself)."""
    keys: Counter[str] = Counter()

    def hook(seen: Seen) -> Reply:
        keys[seen.headers["idempotency-key"]] += 1
        return Reply(204)

    with FeedServer() as server:
        server.routes["/hook"] = hook
        server.routes["/fast.xml"] = Reply(200, FEED)
        server.routes["/slow.xml"] = Reply(200, rss("Slow", ("s", "slow")), hang=True)
        config = write_config(
            tmp_path,
            [{"url": server.url("/fast.xml")}, {"url": server.url("/slow.xml")}],
            hooks=[chat_hook(server)],
            fetch={"allow_private_networks": True, "timeout": "60s"},
            log={"format": "json"},
        )
        db = tmp_path / "ingest.db"
        run = subprocess.Popen(
            [INGEST, "--db", sqlite_url, "--config", str(config), "run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for(lambda: len(_outbox(db)) == 2, timeout=60, what="the fast feed stored")
        finally:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(10)
        assert keys == {}
        assert _outbox(db) == [("chat", "pending"), ("chat", "pending")]

        server.routes["/slow.xml"] = Reply(200, rss("Slow", ("s", "slow")))
        result = Cli(sqlite_url, config)("run")
        assert "hooks: 3 delivered, 0 to be retried, 0 given up; 0 pending" in result.stdout
        assert sorted(keys.values()) == [1, 1, 1]
        assert Cli(sqlite_url, config)("run", "--all").exit_code == 0
        assert sorted(keys.values()) == [1, 1, 1]
        assert [status for _, status in _outbox(db)] == ["done"] * 3


def test_the_daemon_delivers_as_it_stores_and_counts_in_its_metrics(
    tmp_path: Path, sqlite_url: str
) -> None:
    with FeedServer() as server:
        server.routes["/feed.xml"] = Reply(200, FEED)
        server.routes["/hook"] = Reply(204)
        port = free_port()
        config = write_config(
            tmp_path,
            [{"url": server.url("/feed.xml")}],
            hooks=[
                chat_hook(server),
                {"name": "never", "on": ["updated"], "exec": [sys.executable, "-c", "0"]},
            ],
            fetch={"allow_private_networks": True},
            serve={"port": port, "tick": "200ms", "grace": "5s"},
            log={"format": "json"},
        )
        serve = Serve(tmp_path, sqlite_url, config)
        try:
            wait_for(lambda: len(server.requests_to("/hook")) == 2, timeout=60, what="deliveries")
            url = f"http://127.0.0.1:{port}/metrics"

            def counted() -> bool:
                text = get(url)[1]
                delivered = 'ingest_hook_deliveries_total{hook="chat",outcome="delivered"}'
                return metric(text, delivered) == 2 and (
                    metric(text, 'ingest_hook_deliveries_pending{hook="chat"}') == 0
                )

            wait_for(counted, timeout=30, what="the metrics")
            text = get(url)[1]
            assert metric(text, 'ingest_hook_deliveries_total{hook="never",outcome="failed"}') == 0
        finally:
            serve.signal(signal.SIGTERM)
            assert serve.wait(30) == 0
        assert "hook_delivered" in {event["event"] for event in serve.events()}
