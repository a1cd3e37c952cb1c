"""The outbox of hook deliveries on both backends: queued with the posts, claimed by one process
at a time (replicas share the work), settled, retried and given up."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from ingest.identity import decide
from ingest.types import Change, Check, DeliveryResult, Post, SourceState
from storage import HookHealth, Store
from tests.builders import NOW, a_post, a_source, ok

POSTS = [a_post("1", "one"), a_post("2", "two"), a_post("3", "three")]


def everyone(event: Change, post: Post, source: SourceState) -> list[str]:
    """A router for two hooks: ``chat`` wants everything, ``archive`` only new posts."""
    return ["chat", "archive"] if event is Change.NEW else ["chat"]


def store_with_route(store: Store, state: SourceState, posts: Sequence[Post]) -> None:
    store.record_checks([Check(state, posts, ok(state), NOW)], decide=decide, route=everyone)


def test_deliveries_are_queued_with_their_posts_once_and_again_for_a_revision(
    store: Store,
) -> None:
    state = a_source(store)
    store_with_route(store, state, POSTS)
    store_with_route(store, state, POSTS)  # the same posts again: nothing new to announce
    health = {hook.hook: hook for hook in store.hook_health()}
    assert (health["chat"].pending, health["archive"].pending) == (3, 3)

    store_with_route(store, state, [a_post("1", "one, edited"), *POSTS[1:]])
    health = {hook.hook: hook for hook in store.hook_health()}
    assert (health["chat"].pending, health["archive"].pending) == (4, 3)
    claimed = store.claim_deliveries(owner="a", room={"chat": 10}, claim_s=60)
    revised = [d for d in claimed if d.event is Change.UPDATED]
    assert [(d.revision, d.post.revision, d.post.post.title) for d in revised] == [
        (2, 2, "T one, edited")
    ]


def test_storing_without_a_router_queues_nothing(store: Store) -> None:
    state = a_source(store)
    store.record_checks([Check(state, POSTS, ok(state), NOW)], decide=decide)
    assert store.hook_health() == []


def test_a_claim_takes_at_most_the_room_of_each_hook_and_hides_its_rows(store: Store) -> None:
    store_with_route(store, a_source(store), POSTS)
    first = store.claim_deliveries(owner="a", room={"chat": 2, "archive": 1}, claim_s=60)
    assert sorted(d.hook for d in first) == ["archive", "chat", "chat"]
    second = store.claim_deliveries(owner="b", room={"chat": 5, "archive": 5}, claim_s=60)
    assert sorted(d.hook for d in second) == ["archive", "archive", "chat"]
    assert not {d.id for d in first} & {d.id for d in second}
    assert store.claim_deliveries(owner="c", room={"chat": 5, "archive": 5}, claim_s=60) == []


def test_replicas_claiming_at_once_share_the_rows_without_overlap(store: Store) -> None:
    state = a_source(store)
    store_with_route(store, state, [a_post(str(i), f"post {i}") for i in range(30)])
    taken: dict[str, list[int]] = {}

    def claim(owner: str) -> None:
        got: list[int] = []
        while batch := store.claim_deliveries(owner=owner, room={"chat": 3}, claim_s=60):
            got.extend(d.id for d in batch)
        taken[owner] = got

    threads = [threading.Thread(target=claim, args=(f"r{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [row for rows in taken.values() for row in rows]
    assert len(every) == len(set(every)) == 30


def test_an_expired_claim_is_claimed_again_and_its_first_holder_can_no_longer_settle_it(
    store: Store,
) -> None:
    store_with_route(store, a_source(store), POSTS[:1])
    (held,) = store.claim_deliveries(owner="dead", room={"chat": 1}, claim_s=0.2)
    time.sleep(0.4)
    (again,) = store.claim_deliveries(owner="alive", room={"chat": 1}, claim_s=60)
    assert again.id == held.id
    assert again.attempts == 0
    assert (held.claimed_before_by, again.claimed_before_by) == (None, "dead")
    store.settle_deliveries([DeliveryResult(held.id)], owner="dead")
    assert _chat(store).delivered == 0
    store.settle_deliveries([DeliveryResult(again.id)], owner="alive")
    assert (_chat(store).delivered, _chat(store).pending) == (1, 0)


def test_a_failed_attempt_waits_for_its_retry_and_a_given_up_one_is_counted(
    store: Store,
) -> None:
    store_with_route(store, a_source(store), POSTS[:2])
    retried, dropped = store.claim_deliveries(owner="a", room={"chat": 2}, claim_s=60)
    store.settle_deliveries(
        [
            DeliveryResult(retried.id, "HTTP 500", retry_in=0.5),
            DeliveryResult(dropped.id, "HTTP 410", retry_in=None),
        ],
        owner="a",
    )
    chat = _chat(store)
    assert (chat.pending, chat.failed, chat.last_error) == (1, 1, "HTTP 410")
    assert store.pending_deliveries() == {"chat": 1, "archive": 2}
    wait = store.next_delivery_due(["chat"])
    assert wait is not None
    assert 0 < wait <= 0.5
    assert store.claim_deliveries(owner="a", room={"chat": 2}, claim_s=60) == []
    time.sleep(0.7)
    (again,) = store.claim_deliveries(owner="a", room={"chat": 2}, claim_s=60)
    assert (again.id, again.attempts) == (retried.id, 1)
    assert store.next_delivery_due([]) is None


def _chat(store: Store) -> HookHealth:
    return next(hook for hook in store.hook_health() if hook.hook == "chat")
