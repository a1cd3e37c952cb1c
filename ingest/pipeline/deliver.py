"""Hook deliveries: the worker that empties the outbox (``[[hooks]]``, ``storage.outbox``).

::

    claim due rows (per hook at most [delivery] per_hook in flight, [delivery] concurrency in
      │             all; on PostgreSQL SKIP LOCKED, so replicas share the work)
    deliver         webhook: POST of the post's JSON through the SSRF-guarded client
      │             (ingest.fetch.webhook); exec: the JSON on the command's stdin, one process
      │             per post (asyncio subprocess, its process group killed at the timeout)
    settle          done; or failed, tried again after an exponential wait (ingest.hooks), or
                    given up after [delivery] max_attempts

Where it runs: ``ingest serve`` keeps one ``Deliverer`` going in a thread of its own with its own
event loop (``DeliveryThread``), so a slow or failing hook never holds up a fetch, the writer or
a tick; ``ingest run`` runs one after its pass, for at most ``[delivery] run_budget`` (plus the
slowest hook's ``timeout`` for attempts under way), so a cron job stays short; what is left
waits for the next run or the daemon.

At least once: a delivery is settled after the hook answered, so a process that dies in between
leaves it claimed until its claim expires (the longest hook timeout plus ``CLAIM_MARGIN_S``),
and it is delivered again, with the same delivery id (``ingest.hooks.delivery_id``) for the
receiver to drop the repeat. Nothing is delivered twice otherwise.

The body is the post as ``ingest entries show --json`` prints it (``post_json``: its current
content and revision) plus ``event`` (``new`` or ``updated``) and ``delivery_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

import structlog

from ingest.config import HookSpec, Settings
from ingest.errors import StoreError
from ingest.fetch.webhook import Webhooks
from ingest.hooks import delivery_id, retry_in, signature
from ingest.publish.render import post_json
from ingest.types import Delivery, DeliveryOutcome, DeliveryResult, DeliveryStatus
from ingest.urls import redacted
from scheduler.lease import this_process
from storage import Store

log = structlog.get_logger("ingest.pipeline.deliver")

POLL_S = 2.0
"""How often an idle daemon looks for due deliveries."""
CLAIM_MARGIN_S = 60.0
"""A claim outlives the longest hook timeout by this much before another process may retry."""
_STDERR_SHOWN = 300
"""Characters of an exec hook's stderr kept as its error."""


class Deliverer:
    """Claims, delivers and settles deliveries for the configured hooks; see the module
    docstring. An async context manager (it owns the webhook client)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        on_outcome: Callable[[DeliveryOutcome], None] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.hooks = {hook.name: hook for hook in settings.hooks}
        self.owner = str(this_process())
        self.on_outcome = on_outcome
        self.outcomes: list[DeliveryOutcome] = []
        self._claim_s = max((h.timeout for h in settings.hooks), default=0.0) + CLAIM_MARGIN_S
        self._webhooks = Webhooks(settings.fetch, connections=settings.delivery.concurrency)
        self._tasks: dict[asyncio.Task[None], str] = {}
        self._stop = asyncio.Event()

    async def __aenter__(self) -> Deliverer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._webhooks.__aexit__(exc_type, exc, traceback)

    def stop(self) -> None:
        """Claim nothing more; ``run`` returns once the attempts under way end (or its grace)."""
        self._stop.set()

    async def run(self, *, budget: float | None, grace: float) -> list[DeliveryOutcome]:
        """Deliver until stopped, or, with ``budget`` (seconds), until nothing is due within
        it; the attempts made. Attempts under way at the end are waited for (their hooks'
        timeouts bound them), or, after ``stop``, for ``grace`` seconds, then cancelled: their
        rows are claimed until the claim expires, and delivered again then."""
        loop = asyncio.get_running_loop()
        deadline = math.inf if budget is None else loop.time() + budget
        names = sorted(self.hooks)
        while not self._stop.is_set():
            try:
                await self._fill()
                left = deadline - loop.time()
                if left <= 0:
                    break
                if self._tasks:
                    await self._pause(min(left, POLL_S), wait_for_task=True)
                    continue
                due_in = await asyncio.to_thread(self.store.next_delivery_due, names)
            except StoreError as exc:  # the store is down: look again later
                log.warning("deliveries_store_failed", error=exc.reason)
                due_in = POLL_S
                left = deadline - loop.time()
            if budget is not None and (due_in is None or due_in > left):
                break
            await self._pause(min(left, POLL_S, max(POLL_S if due_in is None else due_in, 0.05)))
        await self._finish(grace if self._stop.is_set() else None)
        return self.outcomes

    async def _fill(self) -> None:
        """Claim what the free slots can take and start delivering it."""
        busy = list(self._tasks.values())
        free = self.settings.delivery.concurrency - len(busy)
        room: dict[str, int] = {}
        for name in sorted(self.hooks):  # per_hook keeps one hook from taking every slot
            room[name] = max(0, min(free, self.settings.delivery.per_hook - busy.count(name)))
            free -= room[name]
        if not any(room.values()):
            return
        claimed = await asyncio.to_thread(
            self.store.claim_deliveries, owner=self.owner, room=room, claim_s=self._claim_s
        )
        for delivery in claimed:
            task = asyncio.create_task(self._attempt(delivery), name=f"delivery-{delivery.id}")
            self._tasks[task] = delivery.hook
            task.add_done_callback(self._tasks.pop)

    async def _pause(self, seconds: float, *, wait_for_task: bool = False) -> None:
        """Wait ``seconds``, or less: until ``stop``, or (``wait_for_task``) an attempt ends."""
        waits: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._stop.wait())}
        if wait_for_task:
            waits.update(self._tasks)
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for future in waits - set(self._tasks):
            future.cancel()

    async def _finish(self, grace: float | None) -> None:
        if not self._tasks:
            return
        tasks = list(self._tasks)
        _, late = await asyncio.wait(tasks, timeout=grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if late:
            log.warning("deliveries_cancelled", count=len(late), grace_s=grace)

    async def _attempt(self, delivery: Delivery) -> None:
        """Deliver once and settle the row; never raises (a bug is the attempt's error)."""
        hook = self.hooks[delivery.hook]
        ident = delivery_id(delivery.post.id, delivery.revision, hook.name)
        if delivery.claimed_before_by:
            log.warning(
                "delivery_sent_again",
                hook=hook.name,
                delivery_id=ident,
                claimed_before_by=delivery.claimed_before_by,
                reason="its earlier attempt was never settled; the hook may see it twice",
            )
        try:
            error = await self._send(hook, delivery, ident)
        except Exception as exc:
            log.exception("delivery_crashed", hook=hook.name, delivery_id=ident)
            error = f"internal error {type(exc).__name__}: {exc} (a bug in feed-ingest)"
        attempts = delivery.attempts + 1
        wait = None if error is None else retry_in(attempts, self.settings.delivery)
        if error is None:
            status = DeliveryStatus.DELIVERED
        else:
            status = DeliveryStatus.RETRY if wait is not None else DeliveryStatus.FAILED
        try:
            await asyncio.to_thread(
                self.store.settle_deliveries,
                [DeliveryResult(delivery.id, error, wait)],
                owner=self.owner,
            )
        except StoreError as exc:  # claimed until it expires, then delivered again
            log.warning("delivery_not_settled", delivery_id=ident, error=exc.reason)
        except Exception:  # a bug: the same, and its traceback logged
            log.exception("delivery_not_settled", delivery_id=ident)
        outcome = DeliveryOutcome(hook.name, ident, status, error)
        fields = {"hook": hook.name, "delivery_id": ident, "attempt": attempts}
        if error is None:
            log.info("hook_delivered", **fields)
        else:
            log.warning("hook_failed", **fields, error=error, status=status.value, retry_in_s=wait)
        self.outcomes.append(outcome)
        if self.on_outcome:
            self.on_outcome(outcome)

    async def _send(self, hook: HookSpec, delivery: Delivery, ident: str) -> str | None:
        """One attempt: None when the hook took it, else why not."""
        stored = delivery.post
        document = post_json(
            stored.post,
            post_id=stored.id,
            source=redacted(stored.source or ""),
            revision=stored.revision,
        ) | {"event": delivery.event.value, "delivery_id": ident}
        body = json.dumps(document, ensure_ascii=False).encode()
        if hook.webhook is None:
            return await _run(hook, body)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": ident,
            "X-Ingest-Delivery": ident,
            "X-Ingest-Event": delivery.event.value,
        }
        if hook.secret:
            headers["X-Ingest-Signature"] = signature(hook.secret, body)
        return await self._webhooks.post(hook.webhook, body, headers, timeout=hook.timeout)


async def _run(hook: HookSpec, body: bytes) -> str | None:
    """Run ``hook``'s command with ``body`` on stdin, in the config's folder, within its
    timeout; None when it exits 0, else why not. Its process group is killed when it overruns
    (or the attempt is cancelled), so a script's own children go too."""
    try:
        process = await asyncio.create_subprocess_exec(
            *hook.exec,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            cwd=hook.folder,
            start_new_session=True,
        )
    except OSError as exc:
        return f"cannot run {hook.exec[0]}: {exc.strerror or exc}"
    try:
        async with asyncio.timeout(hook.timeout):
            _, stderr = await process.communicate(body)
    except BaseException as exc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        if isinstance(exc, TimeoutError):
            return f"still running after {hook.timeout:g}s (the hook's timeout); killed"
        raise
    code = process.returncode or 0
    if code == 0:
        return None
    said = stderr.decode(errors="replace").strip()[-_STDERR_SHOWN:]
    ended = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
    return f"{ended}: {said}" if said else ended


class DeliveryThread:
    """A ``Deliverer`` in a thread of its own, with its own event loop: the daemon's, so no hook
    ever waits for, or holds up, the loop that fetches."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        on_outcome: Callable[[DeliveryOutcome], None] | None = None,
    ) -> None:
        self._store, self._settings, self._on_outcome = store, settings, on_outcome
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deliverer: Deliverer | None = None
        self._thread = threading.Thread(target=self._main, name="hook-deliveries", daemon=True)
        self._thread.start()
        self._started.wait()

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        finally:
            self._started.set()  # never leave the daemon waiting, even if starting failed

    async def _serve(self) -> None:
        async with Deliverer(self._store, self._settings, on_outcome=self._on_outcome) as worker:
            self._loop, self._deliverer = asyncio.get_running_loop(), worker
            self._started.set()
            try:
                await worker.run(budget=None, grace=self._settings.serve.grace)
            except Exception:  # a bug: logged; the outbox keeps the work for the next start
                log.exception("deliveries_crashed")

    def stop(self) -> None:
        """Stop claiming, give attempts under way ``[serve] grace``, and end the thread."""
        if self._loop and self._deliverer and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._deliverer.stop)
        self._thread.join()
