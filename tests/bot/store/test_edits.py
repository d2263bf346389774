"""Which delivered alerts are due for their closing edit, on a real SQLite file."""

from __future__ import annotations

from bot.routing import Router
from bot.store import Platform, Store
from bot.store.edits import _DUE, EDIT_WITHIN_MS
from detector.signals import SignalStrength
from tests.bot.factories import T0, arbitrage, closed


def _sent_alert(store: Store, chat: str = "100", net: float = 0.25) -> tuple[int, int]:
    """One user, one delivered arbitrage alert; returns (delivery id, close time)."""
    user = store.register(Platform.TELEGRAM, chat, chat, "u", T0)
    store.subscribe(user.id, "BTCUSDT", 0.1, SignalStrength.WEAK, T0, limit=50)
    signal = arbitrage(net)
    Router(store, T0).dispatch(signal, T0)
    (delivery,) = store.deliveries.due(T0)
    store.deliveries.mark_sent(delivery.id, T0 + 100, "42")
    tracked = closed(signal, duration_ms=4_200, peak_net=0.31)
    store.history.record_opportunity(tracked)
    assert tracked.closed_ms is not None
    return delivery.id, tracked.closed_ms


def test_an_alert_is_due_once_its_opportunity_closed_and_until_edited(store: Store) -> None:
    delivery, closed_ms = _sent_alert(store)
    (due,) = store.edits.due(closed_ms + 1_000)
    assert (due.delivery_id, due.message_id, due.sent_ms) == (delivery, "42", T0 + 100)
    assert (due.closed_after_ms, due.peak_net_pct, due.attempts) == (4_200, 0.31, 0)
    store.edits.mark_done(delivery, closed_ms + 1_000)
    assert store.edits.due(closed_ms + 2_000) == []


def test_a_retry_waits_its_time_and_counts_its_attempts(store: Store) -> None:
    delivery, closed_ms = _sent_alert(store)
    store.edits.mark_retry(delivery, closed_ms + 5_000, "502")
    assert store.edits.due(closed_ms + 4_999) == []
    assert store.edits.next_due_ms(Platform.TELEGRAM) == closed_ms + 5_000
    assert store.edits.next_due_ms(Platform.DISCORD) is None
    (due,) = store.edits.due(closed_ms + 5_000)
    assert due.attempts == 1
    store.edits.mark_done(delivery, closed_ms + 5_000, "message to edit not found")
    row = store.db.one("SELECT status, attempts, last_error FROM edits")
    assert row == {"status": "failed", "attempts": 2, "last_error": "message to edit not found"}


def test_old_closes_are_left_alone(store: Store) -> None:
    _, closed_ms = _sent_alert(store)
    assert len(store.edits.due(closed_ms + EDIT_WITHIN_MS)) == 1
    assert store.edits.due(closed_ms + EDIT_WITHIN_MS + 1) == []


def test_open_opportunities_and_unsent_alerts_are_not_due(store: Store) -> None:
    user = store.register(Platform.TELEGRAM, "7", "7", "u", T0)
    store.subscribe(user.id, "BTCUSDT", 0.1, SignalStrength.WEAK, T0, limit=50)
    signal = arbitrage(0.25)
    Router(store, T0).dispatch(signal, T0)
    assert store.edits.due(T0 + 1_000) == []  # open, and not sent yet
    store.history.record_opportunity(closed(signal))
    assert store.edits.due(T0 + 10_000) == []  # closed, but never delivered


def test_the_query_starts_from_recent_closes_not_the_history(store: Store) -> None:
    """Each outbox pass runs it: it must never scan every delivery ever made."""
    sql = _DUE + " AND (e.delivery IS NULL OR e.next_attempt_ms <= ?) ORDER BY d.id LIMIT 500"
    plan = [r["detail"] for r in store.db.rows("EXPLAIN QUERY PLAN " + sql, [T0, T0])]
    assert plan[0].startswith("SEARCH o USING INDEX opportunities_by_close")
    assert any("signals_by_key" in step for step in plan)
    assert not any(step.startswith("SCAN") for step in plan), plan
