"""Digests on a real file: items gathered, composed once a period ends, sent like a broadcast."""

from __future__ import annotations

from bot.messages import MINUTE_MS
from bot.store import DeliveryPlan, DeliveryStatus, Platform, Store
from detector.signals import Signal, SignalStrength, SignalType
from tests.bot.factories import T0, arbitrage, other

FIVE_MIN = 5 * MINUTE_MS
START = T0 - T0 % FIVE_MIN  # a period boundary
WEAK = SignalStrength.WEAK


def digest_user(store: Store, chat: str = "1", period_ms: int | None = FIVE_MIN) -> int:
    user = store.register(Platform.TELEGRAM, chat, chat, "u", START)
    if period_ms is not None:
        store.set_digest(user.id, period_ms, START)
    return user.id


def gather(store: Store, signal: Signal, user_id: int, at_ms: int) -> None:
    store.history.record_signal(signal, at_ms, DeliveryPlan(signal, False, (), (user_id,)))


def pending_digests(store: Store) -> list[dict[str, object]]:
    return store.db.rows(
        "SELECT d.user, d.silent, b.from_ms, b.to_ms FROM deliveries d"
        " JOIN broadcasts b ON b.id = d.broadcast WHERE b.kind = 'digest' AND d.status = 'pending'"
    )


def test_a_digest_waits_for_its_period_to_end_then_is_one_delivery(store: Store) -> None:
    ann = digest_user(store)
    gather(store, arbitrage(0.3, timestamp=START + 1_000, opened_ms=START), ann, START + 1_000)
    gather(store, other(SignalType.VOLUME_SPIKE), ann, START + 2 * MINUTE_MS)
    assert store.digests.waiting(ann) == 2
    assert store.deliveries.pending_count() == 0  # no alert of its own
    assert store.digests.compose_due(START + FIVE_MIN - 1) == 0  # the period has not ended
    assert store.digests.compose_due(START + FIVE_MIN + 5) == 1
    assert pending_digests(store) == [
        {"user": ann, "silent": 0, "from_ms": START, "to_ms": START + FIVE_MIN}
    ]
    assert store.digests.waiting(ann) == 0
    assert store.digests.compose_due(START + FIVE_MIN + 10) == 0  # composed once


def test_a_signal_after_the_boundary_waits_for_the_next_digest(store: Store) -> None:
    ann = digest_user(store)
    gather(store, other(SignalType.VOLUME_SPIKE, start_ms=1), ann, START + 10)
    gather(store, other(SignalType.SPREAD_ANOMALY, start_ms=2), ann, START + FIVE_MIN + 10)
    assert store.digests.compose_due(START + FIVE_MIN + 20) == 1
    assert store.digests.waiting(ann) == 1
    assert store.digests.compose_due(START + 2 * FIVE_MIN) == 1


def test_after_downtime_one_digest_covers_every_missed_period(store: Store) -> None:
    ann = digest_user(store)
    for n in range(3):
        at = START + n * FIVE_MIN + 10
        gather(store, other(SignalType.SPREAD_ANOMALY, start_ms=n), ann, at)
    assert store.digests.compose_due(START + 3 * FIVE_MIN + 1) == 1
    (digest,) = pending_digests(store)
    assert (digest["from_ms"], digest["to_ms"]) == (START, START + 3 * FIVE_MIN)


def test_due_reads_the_digest_with_the_newest_signal_of_each_episode(store: Store) -> None:
    ann = digest_user(store)
    first = arbitrage(0.21, timestamp=START + 1_000, opened_ms=START)
    grown = arbitrage(0.32, timestamp=START + 2_000, opened_ms=START, reason="regrowth")
    spread = other(SignalType.SPREAD_ANOMALY, timestamp=START + 1_500)
    for signal in (first, spread, grown):
        gather(store, signal, ann, signal.timestamp)
    store.digests.compose_due(START + FIVE_MIN)
    (due,) = store.deliveries.due(START + FIVE_MIN)
    assert due.signal is None and due.broadcast_text is None and due.digest is not None
    assert due.digest.caught == 3
    assert [s.timestamp for s in due.digest.signals] == [START + 1_500, START + 2_000]
    assert due.digest.signals[1].details["net_profit_percentage"] == 0.32


def test_a_digest_of_weak_signals_only_is_silent_and_never_expires(store: Store) -> None:
    ann = digest_user(store)
    gather(store, other(SignalType.VOLUME_SPIKE, WEAK), ann, START + 10)
    store.digests.compose_due(START + FIVE_MIN)
    assert pending_digests(store)[0]["silent"] == 1
    # Its signal expired long ago; the digest is a summary and still goes.
    assert store.deliveries.expire_pending(START + 60 * MINUTE_MS, 500) == 0
    assert len(store.deliveries.due(START + 60 * MINUTE_MS)) == 1


def test_turning_the_digest_on_moves_queued_alerts_and_off_sends_what_waits(
    store: Store,
) -> None:
    ann = digest_user(store, period_ms=None)
    signal = arbitrage(0.3, timestamp=START + 100, opened_ms=START)
    store.history.record_signal(signal, START + 100, DeliveryPlan(signal, False, (ann,)))
    assert store.set_digest(ann, FIVE_MIN, START + 200) == 1
    assert store.user(ann).digest_ms == FIVE_MIN
    statuses = store.db.rows("SELECT status, last_error FROM deliveries")
    assert statuses == [{"status": DeliveryStatus.SKIPPED, "last_error": "moved to the digest"}]
    assert store.digests.waiting(ann) == 1
    store.set_digest(ann, None, START + 300)
    assert store.user(ann).digest_ms is None
    # Off: what waited goes at the next minute, not at the end of the old period.
    assert store.digests.compose_due(START + MINUTE_MS) == 1


def test_only_active_users_of_the_platform_get_theirs(store: Store) -> None:
    ann = digest_user(store, "1")
    bob = digest_user(store, "2")
    gather(store, other(SignalType.VOLUME_SPIKE), ann, START + 10)
    gather(store, other(SignalType.VOLUME_SPIKE), bob, START + 10)
    store.mark_blocked(bob, START + 20)
    assert store.digests.compose_due(START + FIVE_MIN, Platform.DISCORD) == 0
    assert store.digests.compose_due(START + FIVE_MIN, Platform.TELEGRAM) == 1
    assert [d["user"] for d in pending_digests(store)] == [ann]
