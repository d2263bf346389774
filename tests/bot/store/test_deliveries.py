"""The outbox's queue on a real file: what goes first, what no longer can, what is superseded."""

from __future__ import annotations

import pytest

from bot.store import DeliveryPlan, Platform, Store
from bot.store.deliveries import DUE_ORDER
from bot.store.schema import MIGRATIONS
from detector.signals import Signal, SignalStrength, SignalType
from tests.bot.factories import T0, arbitrage, other

STRONG = SignalStrength.STRONG


def users(store: Store, n: int) -> tuple[int, ...]:
    return tuple(store.register(Platform.TELEGRAM, str(c), str(c), "u", T0).id for c in range(n))


def queue(store: Store, signal: Signal, recipients: tuple[int, ...], silent: bool = False) -> int:
    return store.history.record_signal(signal, T0, DeliveryPlan(signal, silent, recipients))


def test_arbitrage_then_notifying_then_newest_and_broadcasts_last(store: Store) -> None:
    (ann,) = users(store, 1)
    funding = other(SignalType.FUNDING_RATE_DIVERGENCE, STRONG, timestamp=T0 - 60_000)
    old_arb = arbitrage(0.3, timestamp=T0 - 5_000, opened_ms=T0 - 5_000)
    new_arb = arbitrage(0.3, timestamp=T0 - 1_000, opened_ms=T0 - 1_000)
    weak_arb = arbitrage(0.12, timestamp=T0, opened_ms=T0)
    store.deliveries.enqueue_broadcast("maintenance tonight", "telegram:1", T0 - 90_000)
    ids = {
        "funding": queue(store, funding, (ann,)),
        "old": queue(store, old_arb, (ann,)),
        "new": queue(store, new_arb, (ann,)),
        "weak": queue(store, weak_arb, (ann,), silent=True),
    }
    names = {v: k for k, v in ids.items()}
    order = [
        "broadcast" if d.signal is None else names[store_signal_id(store, d.id)]
        for d in store.deliveries.due(T0)
    ]
    assert order == ["new", "old", "weak", "funding", "broadcast"]


def store_signal_id(store: Store, delivery_id: int) -> int:
    return int(store.db.scalar("SELECT signal FROM deliveries WHERE id = ?", (delivery_id,)))


def test_recipients_come_in_an_order_of_their_own_for_each_signal(store: Store) -> None:
    everyone = users(store, 40)
    first, second = (arbitrage(0.3, timestamp=T0 + n, opened_ms=T0 + n) for n in (0, 1))
    for signal in (first, second):
        queue(store, signal, everyone)
    due = store.deliveries.due(T0 + 10, limit=100)
    by_signal: dict[int, list[int]] = {}
    for d in due:
        by_signal.setdefault(store_signal_id(store, d.id), []).append(d.user_id)
    newer, older = (by_signal[k] for k in sorted(by_signal, reverse=True))
    assert sorted(newer) == sorted(older) == sorted(everyone)
    assert newer != older and newer[-1] != older[-1]  # nobody is last every time
    assert due[0].signal == second  # the newer signal goes first


@pytest.mark.parametrize(
    ("now_offset_ms", "margin_ms", "expired"),
    [
        (29_000, 0, 0),  # alive for 1 s more
        (29_000, 1_000, 1),  # but a send started now would arrive after the end
        (28_500, 1_000, 0),
        (30_000, 0, 1),
    ],
)
def test_a_send_that_cannot_arrive_alive_is_never_started(
    store: Store, now_offset_ms: int, margin_ms: int, expired: int
) -> None:
    queue(store, arbitrage(0.3), users(store, 1))  # lives 30 s
    assert store.deliveries.expire_pending(T0 + now_offset_ms, margin_ms) == expired
    assert store.deliveries.pending_count() == 1 - expired


def test_a_newer_alert_of_an_episode_supersedes_only_what_is_still_queued(store: Store) -> None:
    ann, bob, cy = users(store, 3)
    first = arbitrage(0.15)
    queue(store, first, (ann, bob, cy))
    (sent,) = [d for d in store.deliveries.due(T0) if d.user_id == cy]
    store.deliveries.mark_sent(sent.id, T0 + 10, "m1")
    grown = arbitrage(0.3, timestamp=T0 + 500)  # the same episode, news for Ann and Cy only
    queue(store, grown, (ann, cy))
    other_episode = arbitrage(0.3, timestamp=T0 + 600, opened_ms=T0 + 600)
    queue(store, other_episode, (bob,))

    rows = store.db.rows(
        "SELECT d.user, s.timestamp, d.status, d.last_error FROM deliveries d"
        " JOIN signals s ON s.id = d.signal ORDER BY d.user, s.timestamp"
    )
    assert [(r["user"], r["timestamp"] - T0, r["status"], r["last_error"]) for r in rows] == [
        (ann, 0, "skipped", "superseded by a newer alert"),
        (ann, 500, "pending", None),
        (bob, 0, "pending", None),  # Bob was not sent the grown one: his stays
        (bob, 600, "pending", None),  # another episode supersedes nothing
        (cy, 0, "sent", None),  # already delivered
        (cy, 500, "pending", None),
    ]


def test_old_news_recorded_again_never_supersedes_what_came_after_it(store: Store) -> None:
    ann, bob = users(store, 2)
    first = arbitrage(0.15)
    queue(store, first, (ann,))
    grown = arbitrage(0.3, timestamp=T0 + 500)  # the same episode, later
    queue(store, grown, (ann, bob))
    queue(store, first, (ann, bob))  # a replay of the first: Bob gets it, nothing is replaced
    rows = store.db.rows(
        "SELECT d.user, s.timestamp, d.status FROM deliveries d"
        " JOIN signals s ON s.id = d.signal ORDER BY d.user, s.timestamp"
    )
    assert [(r["user"], r["timestamp"] - T0, r["status"]) for r in rows] == [
        (ann, 0, "skipped"),  # superseded by the grown alert when it came
        (ann, 500, "pending"),
        (bob, 0, "pending"),
        (bob, 500, "pending"),  # the newer alert stays queued
    ]


def test_the_due_rows_are_read_off_the_index_in_send_order(store: Store) -> None:
    """No sort of every pending row on each pass: the index holds them in DUE_ORDER."""
    queue(store, arbitrage(0.3), users(store, 3))
    sql = (
        "EXPLAIN QUERY PLAN SELECT d.id FROM deliveries d JOIN users u ON u.id = d.user"
        " LEFT JOIN signals s ON s.id = d.signal WHERE d.status = 'pending'"
        f" AND d.next_attempt_ms <= ? AND d.platform = ? ORDER BY {DUE_ORDER} LIMIT 100"
    )
    plan = " / ".join(row[3] for row in store.db.conn.execute(sql, (T0, "telegram")))
    assert "USING INDEX deliveries_next" in plan
    assert "TEMP B-TREE" not in plan


def test_a_file_from_before_schema_4_gets_its_order_filled_in(store: Store) -> None:
    ann, bob = users(store, 2)
    queue(store, other(SignalType.SPREAD_ANOMALY), (ann,), silent=True)
    store.deliveries.enqueue_broadcast("hello", "telegram:1", T0)
    with store.db.tx() as conn:  # as rows written by schema 3 look
        conn.execute("UPDATE deliveries SET order_key = 0, signal_ts = 0, spread = 0")
        conn.execute(MIGRATIONS[3][4])  # schema 4's backfill
    rows = store.db.rows("SELECT user, order_key, signal_ts, spread FROM deliveries ORDER BY id")
    assert [(r["user"], r["order_key"], r["signal_ts"]) for r in rows] == [
        (ann, 3, T0),  # another signal (class 1), silent
        (ann, 4, T0),  # broadcasts (class 2), notifying
        (bob, 4, T0),
    ]
    assert all(0 <= r["spread"] < 2**31 for r in rows) and rows[1]["spread"] != rows[2]["spread"]
