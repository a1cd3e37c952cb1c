"""Leases on SQLite and PostgreSQL: bounded claims, takeover, renewal and fenced saves."""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from ingest.types import Change, Digest, Due, SourceSpec, SourceState, SourceUpdate
from scheduler.lease import Owner, is_gone, this_process
from scheduler.policy import after_success, is_due
from storage import Store, open_store
from storage.models import SOURCES, PostRow
from tests.builders import NOW, SCHEDULE, a_post, ok, record_check
from tests.test_daemon import wait_for
from tests.test_store import count

DUE = Due(now=NOW)
FORCED = Due(now=NOW, force=True)
LEASE = 600.0


def sources(store: Store, count: int) -> list[str]:
    urls = [f"https://x.example/{i}" for i in range(count)]
    store.apply_sources([SourceSpec(url=u) for u in urls], origin="config", now=NOW)
    return urls


def claim(
    store: Store,
    owner: str,
    due: Due = DUE,
    limit: int = 100,
    takeover: frozenset[str] = frozenset(),
) -> list[str]:
    got = store.claim_due(owner=owner, due=due, lease_s=LEASE, limit=limit, takeover=takeover)
    return [state.url for state in got]


def test_a_claim_takes_at_most_its_limit_and_leaves_the_rest_to_others(store: Store) -> None:
    urls = sources(store, 5)

    first = claim(store, "a", limit=2)
    second = claim(store, "b", limit=2)
    third = claim(store, "a", limit=2)
    fourth = claim(store, "b", limit=2)

    assert (first, second, third, fourth) == (urls[:2], urls[2:4], urls[4:], [])


def test_a_held_source_is_free_again_once_saved_released_or_expired(store: Store) -> None:
    urls = sources(store, 3)
    mine = store.claim_due(owner="a", due=DUE, lease_s=LEASE, limit=10)

    assert claim(store, "b", FORCED) == []
    record_check(store, mine[0], [], ok(mine[0]), now=NOW, owner="a")  # saving ends the lease
    assert claim(store, "b", FORCED) == urls[:1]
    store.release([mine[1].id], owner="a")
    assert claim(store, "c", FORCED) == urls[1:2]
    store.renew([mine[2].id], owner="a", lease_s=0)  # as if "a" stopped renewing long ago
    time.sleep(0.01)
    assert claim(store, "d", FORCED) == urls[2:]


def test_a_dead_owners_leases_are_taken_over_at_once(store: Store) -> None:
    urls = sources(store, 2)
    claim(store, "ghost")
    assert claim(store, "b", FORCED) == []
    assert claim(store, "b", FORCED, takeover=frozenset({"ghost"})) == urls


def test_renewal_keeps_only_the_leases_the_owner_still_holds(store: Store) -> None:
    sources(store, 2)
    mine = store.claim_due(owner="a", due=DUE, lease_s=0, limit=10)
    time.sleep(0.01)
    taken = store.claim_due(owner="b", due=FORCED, lease_s=LEASE, limit=1)

    held = store.renew([s.id for s in mine], owner="a", lease_s=LEASE)

    assert held == {mine[1].id}
    assert [s.id for s in taken] == [mine[0].id]
    assert claim(store, "c", FORCED) == []  # both held again, by b and by a


def test_a_check_saved_after_its_lease_was_taken_over_is_dropped(store: Store) -> None:
    """The stale owner's fetch of an edited entry must not count as a second revision."""
    (source_id,) = store.apply_sources(
        [SourceSpec(url="https://x.example/f")], origin="config", now=NOW
    )
    (state,) = store.load_states([source_id])
    record_check(store, state, [a_post("k", "first wording")], ok(state), now=NOW)
    (stale,) = store.claim_due(owner="stale", due=FORCED, lease_s=0, limit=1)
    time.sleep(0.01)
    (fresh,) = store.claim_due(owner="fresh", due=FORCED, lease_s=LEASE, limit=1)
    edited = [a_post("k", "second wording")]

    by_fresh = record_check(store, fresh, edited, ok(fresh), now=NOW, owner="fresh")
    by_stale = record_check(store, stale, edited, _later(stale), now=NOW, owner="stale")

    assert by_fresh == Counter({Change.UPDATED: 1})
    assert by_stale is None
    assert count(store, PostRow) == 1
    (saved,) = store.load_states([source_id])
    assert saved.next_check_at == ok(fresh).next_check_at  # the stale state was not written
    with store.database.read() as conn:
        revision = conn.exec_driver_sql("SELECT revision FROM posts").scalar_one()
    assert revision == 2


def _later(state: SourceState) -> SourceUpdate:
    return after_success(
        state,
        None,
        Digest(feed_title="Stale", posts=()),
        interval_s=60,
        schedule=SCHEDULE,
        now=NOW + timedelta(hours=5),
        rng=random.Random(2),
    )


def test_a_save_without_a_claim_waits_for_no_one_but_respects_a_holder(store: Store) -> None:
    (source_id,) = store.apply_sources(
        [SourceSpec(url="https://x.example/f")], origin="config", now=NOW
    )
    (state,) = store.load_states([source_id])
    claim(store, "worker")
    assert record_check(store, state, [a_post("1", "one")], ok(state), now=NOW) is None
    store.release([source_id], owner="worker")
    assert record_check(store, state, [a_post("1", "one")], ok(state), now=NOW) == {Change.NEW: 1}


def test_the_claims_where_clause_agrees_with_is_due(store: Store) -> None:
    """``scheduler.policy.is_due`` is the rule; the claim's SQL must select exactly that."""
    rng = random.Random(7)
    sources(store, 40)

    def around_now() -> datetime:
        # A third exactly at NOW: "due at now" and "Retry-After ends now" are where a ``<``
        # written for a ``<=`` would go unnoticed.
        return NOW + timedelta(minutes=rng.choice((-30, 0, 30)))

    with store.database.write() as conn:
        for state in store.load_states():
            conn.execute(
                update(SOURCES)
                .where(SOURCES.c.id == state.id)
                .values(
                    next_check_at=around_now() if rng.random() < 0.8 else None,
                    retry_after_until=around_now() if rng.random() < 0.3 else None,
                    enabled=rng.random() < 0.85,
                )
            )
    states = store.load_states()
    for due in (DUE, FORCED):
        expected = sorted(s.url for s in states if is_due(s, due.now, force=due.force))
        assert 0 < len(expected) < len(states)
        assert store.count_wanted(due) == len(expected)
        assert sorted(claim(store, f"o-{due.force}", due, limit=100)) == expected
        store.release([s.id for s in states], owner=f"o-{due.force}")


def test_a_pass_never_claims_a_source_it_already_checked(store: Store) -> None:
    urls = sources(store, 2)
    this_pass = Due(now=NOW, force=True, fresh_since=NOW - timedelta(seconds=1))
    (first, _) = store.claim_due(owner="a", due=this_pass, lease_s=LEASE, limit=10)
    record_check(store, first, [], ok(first), now=NOW, owner="a")
    store.release([s.id for s in store.load_states()], owner="a")

    assert claim(store, "a", this_pass) == urls[1:]


def test_lease_holders_name_owner_count_and_expiry(store: Store) -> None:
    sources(store, 3)
    claim(store, "a", limit=2)
    claim(store, "b", limit=1)

    holders = store.lease_holders()

    assert [(h.owner, h.sources) for h in holders] == [("a", 2), ("b", 1)]
    assert all(h.until > NOW for h in holders)


def test_concurrent_claimers_get_disjoint_sources(store_url: str) -> None:
    setup = open_store(store_url)
    sources(setup, 200)
    stores = [open_store(store_url) for _ in range(4)]
    claimed: list[list[int]] = [[] for _ in stores]

    def claimer(index: int) -> None:
        for _ in range(20):
            got = stores[index].claim_due(owner=f"o{index}", due=FORCED, lease_s=LEASE, limit=7)
            claimed[index].extend(s.id for s in got)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    every = [source_id for ids in claimed for source_id in ids]
    assert sorted(every) == sorted(set(every))
    assert len(every) == 200
    for opened in [setup, *stores]:
        opened.close()


def test_an_owner_is_gone_only_when_its_process_on_this_host_is() -> None:
    me = this_process()
    child = subprocess.Popen(["sleep", "30"])
    try:
        stat = Path(f"/proc/{child.pid}/stat").read_text()
        start = int(stat.rpartition(")")[2].split()[19])
        living = str(Owner(me.host, child.pid, start, "ab12"))
        reused_pid = str(Owner(me.host, child.pid, start + 1, "ab12"))
        assert not is_gone(living)
        assert is_gone(reused_pid)  # same pid, another process: the owner is dead
        child.kill()
        wait_for(lambda: is_gone(living), 5, "a killed child (a zombie until reaped) to be gone")
    finally:
        child.kill()
        child.wait()
    assert is_gone(living)
    assert not is_gone(str(me))
    # A restarted container runs as the same pid (1, say) in a namespace of the same name:
    # that pid with another start time is the crashed predecessor.
    assert is_gone(str(Owner(me.host, me.pid, me.start + 1, "ab12")))
    assert not is_gone(str(Owner("another-host", child.pid, start, "ab12")))
    assert not is_gone("written-by-something-else")
    assert Owner.parse(str(me)) == me


@pytest.mark.parametrize("text", ["", "host", "host:12", "host:x:1-ab", "host:12:x-ab", "h:1:2"])
def test_owner_names_this_code_did_not_write_are_never_gone(text: str) -> None:
    assert Owner.parse(text) is None
    assert not is_gone(text)
