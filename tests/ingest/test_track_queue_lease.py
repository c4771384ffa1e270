"""The lease on a store's track queue: one drainer at a time, renewed by its holder, taken over once it runs out."""

from __future__ import annotations

from datetime import timedelta

from mailer.ingest.track_queue import LEASE_SECONDS, end_lease, take_lease
from tests.support.factories import T0, make_store


def test_a_live_lease_is_the_holders_alone_until_it_runs_out(session) -> None:
    store = make_store(session)
    assert take_lease(session, store.id, "a", T0)
    assert not take_lease(session, store.id, "b", T0 + timedelta(seconds=LEASE_SECONDS - 1))
    assert take_lease(session, store.id, "a", T0 + timedelta(seconds=30))  # renewed by its holder
    assert not take_lease(session, store.id, "b", T0 + timedelta(seconds=30 + LEASE_SECONDS - 1))
    assert take_lease(session, store.id, "b", T0 + timedelta(seconds=31 + LEASE_SECONDS))  # a's ran out
    assert not take_lease(session, store.id, "a", T0 + timedelta(seconds=32 + LEASE_SECONDS))  # a lost it


def test_ending_a_lease_frees_the_store_but_only_the_holder_can(session) -> None:
    store, other = make_store(session), make_store(session)
    assert take_lease(session, store.id, "a", T0) and take_lease(session, other.id, "b", T0)  # one per store
    end_lease(session, store.id, "b")  # not b's: nothing happens
    assert not take_lease(session, store.id, "c", T0)
    end_lease(session, store.id, "a")
    assert take_lease(session, store.id, "c", T0)
