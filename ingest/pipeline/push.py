"""WebSub in the daemon: asking hubs, answering their callbacks, checking what they push.

::

    a check finds a hub ─► SourceOutcome.hub ─► learn ─► Store.advertise_hub   (pending)
    every tick: maintain ─► rules.next_request per subscription ─► mark_requested ─► POST to
                the hub (hub.mode, hub.topic, hub.callback, hub.lease_seconds, hub.secret)
    GET  /websub/<key> ─► callback app ─► confirm / deny          (the hub's verification)
    POST /websub/<key> ─► callback app (size, signature) ─► deliver ─► claim the source ─►
                Pass.process(state, pushed=Fetched(...)) ─► the path of a poll from digest on

Pushed content takes the one path of a check (``ingest.pipeline.runner``): the source is
claimed (its lease, as for a poll, so a poll and a push of one source never overlap), digested,
decided and stored by the same code; only the fetch is skipped. A source another process (or a
poll of ours) holds is tried again until the lease would have ended; past that it is made due,
so a poll fetches what the hub announced.

Writes go through the pipeline's writer thread (``Pass.store_call``): the callback, which runs
in the HTTP endpoint's threads, submits them to the event loop and waits for the answer; reads
(a subscription by its key) are made from the endpoint's thread directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog

from ingest.config import Settings
from ingest.fetch.classify import charset_of
from ingest.pipeline.runner import Pass, utc_now
from ingest.types import (
    Due,
    Failed,
    Fetched,
    HubLink,
    HubMode,
    PushEvent,
    SourceOutcome,
    Subscription,
)
from ingest.urls import redacted
from ingest.websub.rules import callback_for, forgettable, new_key, new_secret, next_request
from storage import Store

log = structlog.get_logger("ingest.pipeline.push")
T = TypeVar("T")

MAX_PENDING = 32
"""Pushed documents waiting to be checked at once; past it a hub is told to retry (503)."""
CLAIM_RETRY_S = 0.5
"""Pause between two tries to claim a source another check holds."""
ANSWER_TIMEOUT_S = 10.0
"""How long a callback waits for the writer thread to record a verification."""


class Push:
    """WebSub subscriptions of one daemon: the ``Subscriptions`` of ``ingest.websub.callback``,
    ``learn`` for each outcome, ``maintain`` on every tick. Started with the daemon's ``Pass``
    (``start``); until then its callbacks answer as unavailable."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        count: Callable[[PushEvent], None],
        on_outcome: Callable[[SourceOutcome], None],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.settings = settings
        self.count = count
        self.on_outcome = on_outcome
        self.clock = clock
        self._runner: Pass | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._known: dict[int, HubLink] = {}
        self._pending: set[Future[None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._maintaining: asyncio.Task[None] | None = None

    def start(self, runner: Pass) -> None:
        """Work through ``runner`` (its writer, its fetcher), on the running event loop."""
        self._runner, self._loop = runner, asyncio.get_running_loop()

    async def stop(self, grace: float) -> None:
        """Give the pushed documents in hand ``grace`` seconds to be stored, then cancel them
        (their content comes again with the next poll)."""
        for background in [self._maintaining, *self._tasks]:
            if background is not None:
                background.cancel()
        pending = [asyncio.wrap_future(future) for future in self._pending]
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace)
            for unfinished in late:
                unfinished.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._runner = None

    # What the checks found ---------------------------------------------------------------

    def learn(self, outcome: SourceOutcome) -> None:
        """Record the hub a check found, once per hub and source (on the event loop)."""
        link = outcome.hub
        if link is None or self._runner is None or self._known.get(outcome.source_id) == link:
            return
        self._known[outcome.source_id] = link
        self._spawn(self._advertise(outcome.source_id, link))

    async def _advertise(self, source_id: int, link: HubLink) -> None:
        assert self._runner is not None
        if await self._runner.store_call(
            self.store.advertise_hub,
            source_id,
            link,
            key=new_key(),
            secret=new_secret(),
            lease_s=round(self.settings.websub.lease),
            now=self.clock(),
        ):
            log.info("websub_hub_found", source_id=source_id, hub=redacted(link.hub))
            self.maintain_soon()

    # Asking hubs ----------------------------------------------------------------------------

    def maintain_soon(self) -> None:
        """Look at every subscription (``maintain``), unless a look is under way."""
        if self._runner is not None and (self._maintaining is None or self._maintaining.done()):
            self._maintaining = asyncio.create_task(self._maintain_logged(), name="websub")

    async def _maintain_logged(self) -> None:
        try:
            await self.maintain()
        except Exception:  # the next tick tries again
            log.exception("websub_maintenance_failed")

    async def maintain(self) -> None:
        """Send each subscription's due request (``rules.next_request``); forget those of
        removed sources that no hub pushes to any more."""
        runner = self._runner
        if runner is None:
            return
        now = self.clock()
        subs = await asyncio.to_thread(self.store.subscriptions)
        if done := [sub.id for sub in subs if forgettable(sub, now)]:
            await runner.store_call(self.store.forget_subscriptions, done)
        for sub in subs:
            mode = next_request(sub, now)
            if mode is not None and sub.id not in done:
                await self._ask(runner, sub, mode, now)

    async def _ask(self, runner: Pass, sub: Subscription, mode: HubMode, now: datetime) -> None:
        """Send ``mode`` for ``sub`` to its hub (WebSub §5.1), noted first: a hub may verify
        before it answers. A request another process noted first is left to it."""
        lease_s = round(self.settings.websub.lease)
        if not await runner.store_call(
            self.store.mark_requested, sub, mode, lease_s=lease_s, now=now
        ):
            return
        form = {
            "hub.mode": mode.value,
            "hub.topic": sub.topic,
            "hub.callback": callback_for(self.settings.websub.callback_url, sub.key),
        }
        if mode is HubMode.SUBSCRIBE:
            form |= {"hub.lease_seconds": str(lease_s), "hub.secret": sub.secret}
        answer = await runner.fetcher.post_form(sub.hub, form)
        fields = {"mode": mode.value, "hub": redacted(sub.hub), "topic": redacted(sub.topic)}
        if isinstance(answer, int) and 200 <= answer < 300:
            log.info("websub_requested", **fields, status=answer)
            return
        reason = answer.reason if isinstance(answer, Failed) else f"the hub answered HTTP {answer}"
        log.warning("websub_request_failed", **fields, error=reason)
        await runner.store_call(self.store.request_failed, sub.id, reason[:500])

    # The callback's side (called from the HTTP endpoint's threads) -------------------------

    def find(self, key: str) -> Subscription | None:
        return self.store.subscription(key)

    def confirm(self, sub: Subscription, lease_until: datetime | None) -> bool:
        return bool(
            self._wait(
                self.store.confirm_subscription, sub, lease_until=lease_until, now=self.clock()
            )
        )

    def deny(self, sub: Subscription, reason: str) -> None:
        self._wait(self.store.deny_subscription, sub.id, reason, now=self.clock())

    def max_body(self, sub: Subscription) -> int:
        states = self.store.load_states([sub.source_id]) if sub.source_id is not None else []
        limit = states[0].spec.max_body if states else None
        return limit or self.settings.fetch.max_body

    def deliver(self, sub: Subscription, body: bytes, content_type: str | None) -> bool:
        """Queue pushed ``body`` to be checked; False when too many are in hand (or the daemon
        is not running), so the hub retries later."""
        loop = self._loop
        if loop is None or self._runner is None or len(self._pending) >= MAX_PENDING:
            return False
        future = asyncio.run_coroutine_threadsafe(
            self._ingest(sub, body, charset_of(content_type)), loop
        )
        self._pending.add(future)
        future.add_done_callback(self._delivered)
        return True

    def _delivered(self, future: Future[None]) -> None:
        self._pending.discard(future)
        if not future.cancelled() and (error := future.exception()) is not None:
            log.error("websub_task_failed", exc_info=error)

    def _wait(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """``func`` run by the writer thread, waited for from an endpoint thread; None when the
        daemon is not running."""
        loop, runner = self._loop, self._runner
        if loop is None or runner is None:
            return None
        future = asyncio.run_coroutine_threadsafe(runner.store_call(func, *args, **kwargs), loop)
        return future.result(timeout=ANSWER_TIMEOUT_S)

    # Pushed content through the path of a check -------------------------------------------------

    async def _ingest(self, sub: Subscription, body: bytes, charset: str | None) -> None:
        """Check ``body`` as the source's new document, under the source's lease."""
        runner, source_id = self._runner, sub.source_id
        if runner is None or source_id is None or not sub.source_enabled:
            log.info("websub_content_dropped", source_id=source_id, why="source not polled")
            return
        give_up = self.clock() + timedelta(seconds=self.settings.schedule.lease)
        while True:
            now = self.clock()
            due = Due(now=now, force=True, only=frozenset({source_id}))
            states = await runner.claim(due, limit=1)
            if states:
                break
            if now >= give_up:
                log.warning("websub_content_deferred", source_id=source_id, reason="source busy")
                await runner.store_call(self.store.make_due, source_id, now)
                return
            await asyncio.sleep(CLAIM_RETRY_S)
        state = states[0]
        pushed = Fetched(
            url=state.url,
            document=body,
            charset=charset,
            # The feed's validators stay: this document came from the hub, not the feed.
            etag=state.etag,
            last_modified=state.last_modified,
        )
        outcome = await runner.process(state, pushed=pushed)
        log.info("websub_content_checked", source_id=source_id, status=outcome.status.value)
        self.on_outcome(outcome)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background, held until it ends, its failure logged."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("websub_task_failed", exc_info=error)
