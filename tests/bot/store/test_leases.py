"""Leases on a real SQLite file: one owner at a time, lapsing by themselves, and who holds them."""

from __future__ import annotations

from bot.store import Store
from tests.bot.factories import T0


def test_only_one_owner_holds_the_outbox_lease(store: Store) -> None:
    assert store.leases.acquire("outbox", "a", T0, 10_000)
    assert not store.leases.acquire("outbox", "b", T0 + 5_000, 10_000)
    assert store.leases.acquire("outbox", "a", T0 + 9_000, 10_000)  # renewal
    assert not store.leases.acquire("outbox", "b", T0 + 18_000, 10_000)
    assert store.leases.acquire("outbox", "b", T0 + 19_000, 10_000)  # a expired
    store.leases.release("outbox", "b")
    assert store.leases.acquire("outbox", "c", T0 + 19_001, 10_000)


def test_the_holder_of_a_lease_is_named(store: Store) -> None:
    assert store.leases.holder("instance") is None
    store.leases.acquire("instance", "host:123:abcd", T0, 15_000)
    assert store.leases.holder("instance") == "host:123:abcd"
    assert store.leases.holder("outbox:telegram") is None
    store.leases.release("instance", "someone else")  # only the owner can release it
    assert store.leases.holder("instance") == "host:123:abcd"
    store.leases.release("instance", "host:123:abcd")
    assert store.leases.holder("instance") is None
