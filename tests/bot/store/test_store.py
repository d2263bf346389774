"""The store on real SQLite files: schema and migrations, constraints, restarts, the outbox."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest

from bot.errors import SchemaTooNew, StoreError, SubscriptionLimit, UnknownUser
from bot.messages import DAY_MS
from bot.store import ALL_SYMBOLS, DeliveryPlan, DeliveryStatus, Platform, Store, User
from bot.store.schema import MIGRATIONS, SCHEMA_VERSION
from detector.analyzer import CloseReason, Direction, TrackedOpportunity
from detector.models import Exchange
from detector.opportunity import ArbitrageOpportunity
from detector.signals import SignalStrength, SignalType
from tests.bot.factories import T0, arbitrage, other

WEAK, MODERATE, STRONG = SignalStrength.WEAK, SignalStrength.MODERATE, SignalStrength.STRONG


def register(store: Store, chat: str = "100", now: int = T0) -> User:
    return store.register(Platform.TELEGRAM, chat, chat, f"user{chat}", now)


def dump(path: Path) -> list[str]:
    """Every row of every table, to compare a whole database before and after."""
    with closing(sqlite3.connect(path)) as conn:
        return list(conn.iterdump())


def plan_for(users: tuple[int, ...], net: float = 0.15) -> DeliveryPlan:
    return DeliveryPlan(arbitrage(net), net < 0.2, users)


# -- schema -----------------------------------------------------------------------------------


def test_a_new_file_is_migrated_with_wal_and_foreign_keys(store: Store, path: Path) -> None:
    assert store.db.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    assert store.db.journal_mode == "wal"
    assert store.db.scalar("PRAGMA foreign_keys") == 1
    with closing(sqlite3.connect(path)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"users", "subscriptions", "signals", "opportunities", "deliveries"} <= tables


def test_a_version_1_file_is_migrated_and_keeps_its_data(path: Path) -> None:
    # What an arbwatch with only the first migration left on disk.
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO users (platform, chat_id, user_id, name, created_ms, updated_ms)"
            " VALUES ('telegram', '42', '42', 'old', 1, 1)"
        )
        conn.execute(
            "INSERT INTO subscriptions (user, symbol, threshold_pct, min_strength, created_ms,"
            " updated_ms) VALUES (1, 'BTCUSDT', 0.3, 'moderate', 1, 1)"
        )
    with Store(path) as store:
        assert store.db.schema_version == SCHEMA_VERSION
        (subscriber,) = store.subscribers()
        assert subscriber.user.name == "old"
        assert subscriber.subscriptions[0].threshold_pct == 0.3
        # The tables of migration 2 work.
        store.history.record_signal(arbitrage(0.35), T0, plan_for((1,), 0.35))
        assert store.deliveries.pending_count() == 1


def test_users_from_before_venues_trade_on_every_venue(path: Path) -> None:
    # A file written before /venues: its users' preferences say nothing of venues.
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for migration in MIGRATIONS:
            for statement in migration:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute(
            "INSERT INTO users (platform, chat_id, user_id, name, created_ms, updated_ms,"
            " preferences) VALUES ('telegram', '42', '42', 'old', 1, 1, ?)",
            ('{"types": ["arbitrage"]}',),
        )
    with Store(path) as store:
        old = store.find_user(Platform.TELEGRAM, "42")
        assert old is not None and old.venues is None and old.types == {SignalType.ARBITRAGE}
        store.set_venues(old.id, frozenset({"bybit", "okx"}), T0)
        raw = store.db.scalar("SELECT preferences FROM users WHERE id = ?", (old.id,))
        assert raw == '{"types":["arbitrage"],"venues":["bybit","okx"]}'
        store.set_venues(old.id, None, T0)  # back to every venue: the key goes, as if never set
        raw = store.db.scalar("SELECT preferences FROM users WHERE id = ?", (old.id,))
        assert raw == '{"types":["arbitrage"]}'
        assert store.user(old.id).venues is None


def test_a_file_from_a_newer_arbwatch_is_refused(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(SchemaTooNew) as info:
        Store(path)
    assert (info.value.found, info.value.supported) == (99, SCHEMA_VERSION)


def test_a_file_that_is_not_a_database_is_a_store_error(path: Path) -> None:
    path.write_bytes(b"not sqlite at all " * 100)
    with pytest.raises(StoreError, match="not a usable arbwatch database"):
        Store(path)


# -- constraints ------------------------------------------------------------------------------


def test_one_user_per_chat_and_one_subscription_per_symbol(store: Store) -> None:
    first = register(store)
    again = register(store)
    assert first.id == again.id
    assert store.subscribe(first.id, "BTCUSDT", 0.15, WEAK, T0, limit=5) is True
    assert store.subscribe(first.id, "BTCUSDT", 0.3, STRONG, T0 + 1, limit=5) is False
    (sub,) = store.subscriptions(first.id)
    assert (sub.threshold_pct, sub.min_strength, sub.created_ms, sub.updated_ms) == (
        0.3,
        STRONG,
        T0,
        T0 + 1,
    )
    with pytest.raises(sqlite3.IntegrityError), store.db.tx() as conn:
        conn.execute(
            "INSERT INTO users (platform, chat_id, user_id, created_ms, updated_ms)"
            " VALUES ('telegram', '100', 'x', 0, 0)"
        )
    # CHECK: thresholds are positive
    with pytest.raises(sqlite3.IntegrityError), store.db.tx() as conn:
        conn.execute(
            "INSERT INTO subscriptions VALUES (?, 'ETHUSDT', 0, 'weak', NULL, 0, 0)", (first.id,)
        )


def test_the_same_news_is_queued_once_per_user(store: Store) -> None:
    user = register(store)
    plan = plan_for((user.id,))
    first = store.history.record_signal(plan.signal, T0, plan)
    again = store.history.record_signal(plan.signal, T0 + 5, plan)  # a replay after a restart
    assert first == again
    assert store.deliveries.pending_count() == 1
    with pytest.raises(sqlite3.IntegrityError), store.db.tx() as conn:
        conn.execute(
            "INSERT INTO deliveries (user, signal, next_attempt_ms, created_ms)"
            " VALUES (?, ?, 0, 0)",
            (user.id, first),
        )


def test_the_cap_refuses_a_new_subscription_and_writes_nothing(store: Store, path: Path) -> None:
    user = register(store)
    store.subscribe(user.id, "BTCUSDT", 0.15, WEAK, T0, limit=2)
    store.subscribe(user.id, ALL_SYMBOLS, 0.2, WEAK, T0, limit=2)
    before = dump(path)
    with pytest.raises(SubscriptionLimit) as info:
        store.subscribe(user.id, "ETHUSDT", 0.15, WEAK, T0 + 1, limit=2)
    assert info.value.limit == 2
    assert dump(path) == before
    # Updating one already held is not a new subscription.
    assert store.subscribe(user.id, "BTCUSDT", 0.25, WEAK, T0 + 2, limit=2) is False


# -- restarts ---------------------------------------------------------------------------------


def test_subscribe_chat_registers_and_subscribes_in_one_transaction(
    store: Store, path: Path
) -> None:
    seen: list[int] = []
    store.add_listener(seen.append)
    first = store.subscribe_chat(
        Platform.TELEGRAM, "-5", "9", "Group", ALL_SYMBOLS, 0.2, WEAK, T0, limit=2, is_group=True
    )
    assert first.created and not first.has_all_default  # ALL itself overrides nothing
    assert (first.user.chat_id, first.user.is_group, first.user.name) == ("-5", True, "Group")
    store.mark_blocked(first.user.id, T0 + 1)

    again = store.subscribe_chat(
        Platform.TELEGRAM, "-5", "10", "Renamed", "BTCUSDT", 0.3, STRONG, T0 + 2, limit=2
    )
    assert again.created and again.has_all_default
    assert again.user.id == first.user.id and again.user.active and again.user.name == "Renamed"
    assert seen == [first.user.id, first.user.id, first.user.id]

    before = dump(path)
    with pytest.raises(SubscriptionLimit):
        store.subscribe_chat(
            Platform.TELEGRAM, "-5", "11", "Third", "ETHUSDT", 0.3, WEAK, T0 + 3, limit=2
        )
    assert dump(path) == before  # not even the name changed
    with pytest.raises(SubscriptionLimit):
        store.subscribe_chat(Platform.DISCORD, "1", "1", "New", "ETHUSDT", 0.3, WEAK, T0, limit=0)
    assert store.find_user(Platform.DISCORD, "1") is None


def test_subscriptions_and_settings_survive_a_restart(path: Path) -> None:
    with Store(path) as store:
        user = register(store)
        store.subscribe(user.id, "BTCUSDT", 0.15, MODERATE, T0, limit=5)
        store.subscribe(user.id, ALL_SYMBOLS, 0.3, WEAK, T0, limit=5)
        store.set_types(user.id, frozenset({SignalType.ARBITRAGE}), T0)
        store.set_subscription_types(user.id, "BTCUSDT", frozenset({SignalType.VOLUME_SPIKE}), T0)
        store.mute(user.id, T0 + DAY_MS, T0, symbol="ETHUSDT")
        store.set_venues(user.id, frozenset({"okx", "binance"}), T0)
        before = store.subscribers()
    with Store(path) as reopened:
        assert reopened.subscribers() == before
        (subscriber,) = before
        assert subscriber.user.types == {SignalType.ARBITRAGE}
        assert subscriber.user.venues == {"binance", "okx"}
        assert subscriber.user.muted_symbols == {"ETHUSDT": T0 + DAY_MS}
        assert [s.symbol for s in subscriber.subscriptions] == [ALL_SYMBOLS, "BTCUSDT"]


def test_pending_deliveries_survive_a_restart(path: Path) -> None:
    with Store(path) as store:
        users = tuple(register(store, str(chat)).id for chat in range(3))
        plan = plan_for(users)
        store.history.record_signal(plan.signal, T0, plan)
        (sent, *_) = store.deliveries.due(T0)
        store.deliveries.mark_sent(sent.id, T0 + 10, message_id="555")
    with Store(path) as reopened:
        due = reopened.deliveries.due(T0 + 20)
        remaining = [u for u in users if u != sent.user_id]
        assert sorted(d.user_id for d in due) == remaining
        assert all(d.signal == plan.signal and d.silent for d in due)
        chats = {reopened.user(u).chat_id for u in remaining}
        assert {d.chat_id for d in due} == chats
        assert all(d.platform is Platform.TELEGRAM for d in due)


def test_the_store_may_be_used_from_another_thread(store: Store) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            register(store, "thread")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert errors == []
    assert store.find_user(Platform.TELEGRAM, "thread") is not None


# -- users --------------------------------------------------------------------------------------


def test_blocking_deactivates_and_skips_pending_and_a_return_reactivates(store: Store) -> None:
    user = register(store)
    store.subscribe(user.id, "BTCUSDT", 0.15, WEAK, T0, limit=5)
    plan = plan_for((user.id,))
    store.history.record_signal(plan.signal, T0, plan)
    changed: list[int] = []
    store.add_listener(changed.append)

    assert store.mark_blocked(user.id, T0 + 1) == 1
    assert store.deliveries.due(T0 + 2) == []
    assert store.subscriber(user.id) is None
    assert store.user(user.id).blocked_at == T0 + 1
    assert store.subscriptions(user.id)  # data is kept
    again = register(store, now=T0 + 3)
    assert again.active and again.blocked_at is None
    assert store.subscriber(user.id) is not None
    assert changed == [user.id, user.id]
    with pytest.raises(UnknownUser):
        store.mark_blocked(9999, T0)


def test_mute_skips_queued_alerts_and_unmute_reports_what_it_did(store: Store) -> None:
    user = register(store)
    plan = plan_for((user.id,))
    store.history.record_signal(plan.signal, T0, plan)
    assert store.mute(user.id, T0 + 3_600_000, T0, symbol="ETHUSDT") == 0  # other symbol
    assert store.mute(user.id, T0 + 3_600_000, T0, symbol="BTCUSDT") == 1
    assert store.user(user.id).muted(T0 + 1, "BTCUSDT")
    assert not store.user(user.id).muted(T0 + 1)
    assert store.unmute(user.id, T0, symbol="BTCUSDT") is True
    assert store.unmute(user.id, T0, symbol="BTCUSDT") is False
    store.mute(user.id, T0 + 60_000, T0)
    assert store.user(user.id).muted(T0 + 59_999)
    assert not store.user(user.id).muted(T0 + 60_000)
    assert store.unmute(user.id, T0) is True
    assert store.unmute(user.id, T0) is False


def test_user_counts(store: Store) -> None:
    a, b, c = (register(store, chat) for chat in ("1", "2", "3"))
    store.register(Platform.DISCORD, "d1", "9", "dee", T0)
    store.subscribe(a.id, "BTCUSDT", 0.2, WEAK, T0, limit=5)
    store.subscribe(a.id, ALL_SYMBOLS, 0.2, WEAK, T0, limit=5)
    store.subscribe(b.id, "BTCUSDT", 0.2, WEAK, T0, limit=5)
    store.mark_blocked(b.id, T0)
    store.mute(c.id, T0 + 1000, T0)
    counts = store.user_counts(T0)
    assert (counts.total, counts.active, counts.blocked, counts.muted) == (4, 3, 1, 1)
    assert counts.by_platform == {"telegram": 3, "discord": 1}
    assert (counts.subscribed, counts.subscriptions) == (1, 3)


# -- the outbox ---------------------------------------------------------------------------------


def test_delivery_lifecycle(store: Store) -> None:
    users = tuple(register(store, str(chat)).id for chat in range(4))
    plan = plan_for(users)
    store.history.record_signal(plan.signal, T0, plan)
    first, second, third, fourth = sorted(store.deliveries.due(T0, limit=10), key=lambda d: d.id)

    store.deliveries.mark_sent(first.id, T0 + 5, "m-1")
    store.deliveries.mark_retry(second.id, T0 + 5_000, "429: retry after 5")
    store.deliveries.finish(third.id, DeliveryStatus.FAILED, T0 + 5, "400: chat not found")
    assert [d.id for d in store.deliveries.due(T0 + 10)] == [fourth.id]
    assert store.deliveries.next_due_ms() == T0
    assert [d.id for d in store.deliveries.due(T0 + 5_000)] == [fourth.id, second.id]
    assert store.deliveries.due(T0 + 5_000)[1].attempts == 1

    # The signal expires (30 s) before the rest could be sent.
    assert store.deliveries.expire_pending(T0 + 30_000) == 2
    assert store.deliveries.pending_count() == 0
    rows = store.db.rows("SELECT status, last_error FROM deliveries ORDER BY id")
    assert [r["status"] for r in rows] == ["sent", "expired", "failed", "expired"]
    assert rows[1]["last_error"] == "signal expired before delivery"

    (message,) = store.deliveries.sent_for_episode(plan.signal.key)
    assert (message.message_id, message.chat_id, message.signal) == ("m-1", "0", plan.signal)
    with pytest.raises(ValueError):
        store.deliveries.finish(first.id, DeliveryStatus.SENT, T0, "no")


def test_recent_sends_say_where_each_platform_sent_and_when(store: Store) -> None:
    telegram = register(store, "100")
    group = store.register(Platform.TELEGRAM, "-7", "1", "g", T0, is_group=True)
    routed = store.register(Platform.DISCORD, "55", "55", "d", T0)
    store.set_channel(routed.id, "9001", T0)
    store.history.record_signal(arbitrage(0.3), T0, plan_for((telegram.id, group.id, routed.id)))
    for n, delivery in enumerate(sorted(store.deliveries.due(T0), key=lambda d: d.user_id)):
        store.deliveries.mark_sent(delivery.id, T0 + 100 * (n + 1), f"m{n}")

    sent = store.deliveries.recent_sends(Platform.TELEGRAM, T0)
    assert [(s.destination, s.shared, s.sent_ms) for s in sent] == [
        ("100", False, T0 + 100),
        ("-7", True, T0 + 200),
    ]
    (channel,) = store.deliveries.recent_sends(Platform.DISCORD, T0)
    assert (channel.destination, channel.shared) == ("channel:9001", True)
    assert store.deliveries.recent_sends(Platform.TELEGRAM, T0 + 200) == []


def test_ledger_rows_tell_what_each_user_was_queued(store: Store) -> None:
    user = register(store)
    for net in (0.15, 0.21):
        signal = arbitrage(net, timestamp=T0 + int(net * 1000))
        plan = DeliveryPlan(signal, False, (user.id,))
        store.history.record_signal(signal, signal.timestamp, plan)
        for due in store.deliveries.due(signal.timestamp):  # sent: the next one supersedes none
            store.deliveries.mark_sent(due.id, signal.timestamp)
    rows = store.deliveries.ledger_rows(T0)
    assert [(r.user_id, r.strength, r.net_pct) for r in rows] == [
        (user.id, WEAK, 0.15),
        (user.id, MODERATE, 0.21),
    ]
    assert store.deliveries.ledger_rows(T0 + 1_000) == []


def test_broadcast_reaches_active_users_silently_when_muted(store: Store) -> None:
    a, b, c = (register(store, chat) for chat in ("1", "2", "3"))
    store.mark_blocked(b.id, T0)
    store.mute(c.id, T0 + 60_000, T0)
    assert store.deliveries.enqueue_broadcast("<b>maintenance</b> & more", "telegram:1", T0) == 2
    due = store.deliveries.due(T0)
    assert [(d.user_id, d.silent, d.signal) for d in due] == [
        (a.id, False, None),
        (c.id, True, None),
    ]
    assert due[0].broadcast_text == "<b>maintenance</b> & more"


# -- history and pruning ------------------------------------------------------------------------


def _tracked(opened: int, duration: int, peak_net: float, profit: float) -> TrackedOpportunity:
    def observation(ts: int, net: float) -> ArbitrageOpportunity:
        return ArbitrageOpportunity(
            symbol="ETHUSDT",
            direction=Direction.of(Exchange.BYBIT, Exchange.BINANCE),
            profit_percentage=net + 0.1,
            profit_absolute=3.0,
            buy_price=3000.0,
            sell_price=3003.0,
            max_volume=2.0,
            timestamp=ts,
            buy_exchange=Exchange.BYBIT,
            sell_exchange=Exchange.BINANCE,
            net_profit_percentage=net,
            expected_profit=profit,
        )

    return TrackedOpportunity(
        id=f"ETHUSDT:buy_bybit_sell_binance:{opened}",
        symbol="ETHUSDT",
        direction=Direction.of(Exchange.BYBIT, Exchange.BINANCE),
        opened_ms=opened,
        last=observation(opened + duration, 0.11),
        peak=observation(opened + 1, peak_net),
        closed_ms=opened + duration,
        close_reason=CloseReason.BELOW_THRESHOLD,
    )


def test_opportunity_stats_from_signals_and_the_analyzer(store: Store) -> None:
    # From signals alone: opened, then regrown.
    store.history.record_signal(arbitrage(0.15, expected_profit=5.0), T0)
    store.history.record_signal(
        arbitrage(0.25, timestamp=T0 + 4_000, expected_profit=9.0, reason="regrowth"), T0 + 4_000
    )
    # From the analyzer: three closed ones.
    for i, (duration, net, profit) in enumerate(
        [(1_000, 0.2, 2.0), (3_000, 0.5, 20.0), (8_000, 0.3, 4.0)]
    ):
        store.history.record_opportunity(_tracked(T0 + 10_000 * (i + 1), duration, net, profit))
    stats = store.history.opportunity_stats(T0, T0 + 60_000)
    assert (stats.count, stats.open_now) == (4, 1)
    assert stats.max_peak_net_pct == 0.5
    assert stats.avg_peak_net_pct == pytest.approx((0.25 + 0.2 + 0.5 + 0.3) / 4)
    assert stats.median_duration_ms == 3_500  # 1 s, 3 s, 4 s (so far), 8 s
    assert stats.max_duration_ms == 8_000
    assert stats.total_expected_profit == pytest.approx(9.0 + 2.0 + 20.0 + 4.0)
    only_eth = store.history.opportunity_stats(T0, T0 + 60_000, "ETHUSDT")
    assert only_eth.count == 3
    assert store.history.opportunity_stats(T0 + 60_000, T0 + 70_000).count == 0


def test_signal_counts_by_type_and_strength(store: Store) -> None:
    store.history.record_signal(arbitrage(0.15), T0)
    store.history.record_signal(arbitrage(0.45, timestamp=T0 + 1), T0)
    store.history.record_signal(other(SignalType.VOLUME_SPIKE, MODERATE), T0)
    store.history.record_signal(other(SignalType.SPREAD_ANOMALY, symbol="ETHUSDT"), T0)
    counts = store.history.signal_counts(T0, T0 + 1_000)
    assert counts == {
        SignalType.ARBITRAGE: {WEAK: 1, STRONG: 1},
        SignalType.VOLUME_SPIKE: {MODERATE: 1},
        SignalType.SPREAD_ANOMALY: {WEAK: 1},
    }
    assert SignalType.SPREAD_ANOMALY not in store.history.signal_counts(T0, T0 + 1, "BTCUSDT")


def test_prune_removes_old_history_but_keeps_what_is_pending(store: Store) -> None:
    user = register(store)
    old_sent = arbitrage(0.15, timestamp=T0, opened_ms=T0)
    old_pending = arbitrage(0.2, timestamp=T0 + 1, opened_ms=T0 + 1)
    recent = arbitrage(0.3, timestamp=T0 + 40 * DAY_MS, opened_ms=T0 + 40 * DAY_MS)
    for signal in (old_sent, old_pending, recent):
        plan = DeliveryPlan(signal, False, (user.id,))
        store.history.record_signal(signal, signal.timestamp, plan)
    sent_id = store.deliveries.due(T0)[0].id
    store.deliveries.mark_sent(sent_id, T0 + 1)

    pruned = store.prune(T0 + 40 * DAY_MS, max_age_ms=30 * DAY_MS)
    assert (pruned.signals, pruned.deliveries, pruned.opportunities) == (1, 1, 2)
    keys = [r["key"] for r in store.db.rows("SELECT key FROM signals ORDER BY id")]
    assert keys == [old_pending.key, recent.key]
    assert store.deliveries.pending_count() == 2
    assert store.prune(T0 + 40 * DAY_MS, max_age_ms=30 * DAY_MS).signals == 0


def test_a_damaged_file_is_refused_at_once_naming_the_fix(path: Path) -> None:
    with Store(path) as store:
        for n in range(400):  # several pages of users
            register(store, str(1000 + n))
    data = bytearray(path.read_bytes())
    page = 4096
    last = len(data) // page - 1  # the last page: where the newest users' rows went
    assert last > 4
    data[last * page : last * page + 8] = b"\xff" * 8  # its b-tree page header
    path.write_bytes(bytes(data))

    with pytest.raises(StoreError) as caught:
        Store(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    assert "damaged" in message or "malformed" in message
    assert "restore it from a backup, or move it away" in message
