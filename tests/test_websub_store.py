"""WebSub subscriptions in the store, on SQLite and PostgreSQL: recorded once per hub, fenced
requests and verifications, and the lease end read with the source's state."""

from __future__ import annotations

from datetime import timedelta

from ingest.types import Due, HubLink, HubMode, SubscriptionState
from storage import Store
from tests.builders import NOW, a_source, ok, record_check

HUB = HubLink("https://hub.example/", "https://x.example/feed")


def advertised(store: Store) -> int:
    state = a_source(store)
    assert store.advertise_hub(state.id, HUB, key="k1", secret="s1", lease_s=3600, now=NOW)
    return state.id


def test_a_hub_is_recorded_once_and_a_new_one_starts_over(store: Store) -> None:
    source_id = advertised(store)
    assert not store.advertise_hub(source_id, HUB, key="k2", secret="s2", lease_s=3600, now=NOW)
    (sub,) = store.subscriptions()
    assert (sub.key, sub.secret, sub.state, sub.source_enabled) == (
        "k1",
        "s1",
        SubscriptionState.PENDING,
        True,
    )
    moved = HubLink("https://other-hub.example/", HUB.topic)
    assert store.advertise_hub(source_id, moved, key="k3", secret="s3", lease_s=3600, now=NOW)
    (sub,) = store.subscriptions()
    assert (sub.hub, sub.key, sub.secret) == (moved.hub, "k1", "s3")


def test_requests_and_verifications_are_fenced_and_push_shows_on_the_source(
    store: Store,
) -> None:
    source_id = advertised(store)
    (sub,) = store.subscriptions()
    assert store.mark_requested(sub, HubMode.SUBSCRIBE, lease_s=3600, now=NOW)
    assert not store.mark_requested(sub, HubMode.SUBSCRIBE, lease_s=3600, now=NOW)  # raced
    asked = store.subscription("k1")
    assert asked is not None
    assert asked.requested is HubMode.SUBSCRIBE
    until = NOW + timedelta(days=10)
    assert store.confirm_subscription(asked, lease_until=until, now=NOW)
    assert not store.confirm_subscription(asked, lease_until=until, now=NOW)  # answered already
    (active,) = store.subscriptions()
    assert (active.state, active.requested, active.lease_until) == (
        SubscriptionState.ACTIVE,
        None,
        until,
    )
    (state,) = store.load_states([source_id])
    assert state.push_until == until
    (claimed,) = store.claim_due(owner="me", due=Due(now=NOW, force=True), lease_s=60, limit=5)
    assert claimed.push_until == until


def test_a_denial_stops_push_and_makes_the_source_due(store: Store) -> None:
    source_id = advertised(store)
    (state,) = store.load_states([source_id])
    record_check(store, state, [], ok(state))  # next check half an hour on
    (sub,) = store.subscriptions()
    store.deny_subscription(sub.id, "denied by the hub: no", now=NOW)
    (denied,) = store.subscriptions()
    assert (denied.state, denied.last_error) == (SubscriptionState.DENIED, "denied by the hub: no")
    (state,) = store.load_states([source_id])
    assert state.next_check_at == NOW
    assert state.push_until is None


def test_a_removed_source_leaves_its_subscription_to_be_undone(store: Store) -> None:
    source_id = advertised(store)
    assert store.remove_source(source_id, purge=False) is not None
    (orphan,) = store.subscriptions()
    assert (orphan.source_id, orphan.source_enabled) == (None, False)
    store.forget_subscriptions([orphan.id])
    assert store.subscriptions() == []
