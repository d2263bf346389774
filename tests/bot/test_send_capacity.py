"""Routing queues no more than the platforms can send while a signal is alive.

The outbox sends at most its platform's rate: rows past what that rate carries before a signal
expires could only ever expire unsent, yet each costs a write (10,000 subscribers of ALL and a
burst of 200 signals made 2,000,000 of them). These tests hold the cap to the outbox's own
order: the rows queued are exactly those the outbox would have sent first from the full queue.
"""

from __future__ import annotations

import math
from pathlib import Path

from bot.commands import CommandHandler
from bot.config import Settings
from bot.routing import Router
from bot.store import ALL_SYMBOLS, Platform, Store
from bot.store.history import SEND_MARGIN
from detector.signals import SignalStrength, SignalType
from tests.bot.factories import T0, TTL_MS, arbitrage, other

TELEGRAM, DISCORD = Platform.TELEGRAM, Platform.DISCORD
RATES = {TELEGRAM: 1.0, DISCORD: 0.5}  # messages a second: small, so that a few users fill them


def _audience(path: Path, telegram: int, discord: int) -> Store:
    """A store whose ``telegram`` + ``discord`` users all subscribe to ALL at 0.1 %."""
    store = Store(path)
    for n in range(telegram + discord):
        platform = TELEGRAM if n < telegram else DISCORD
        user = store.register(platform, str(100 + n), str(100 + n), f"u{n}", T0)
        store.subscribe(user.id, ALL_SYMBOLS, 0.1, SignalStrength.WEAK, T0, limit=5)
    return store


def _queued(store: Store, signal_id: int, platform: Platform) -> set[int]:
    rows = store.db.rows(
        "SELECT user FROM deliveries WHERE signal = ? AND platform = ?", (signal_id, platform.value)
    )
    return {r["user"] for r in rows}


def _cap(rate: float, alive_ms: int) -> int:
    return math.ceil(rate * alive_ms / 1000 * SEND_MARGIN)


def test_a_signal_queues_what_each_platform_sends_before_it_expires(tmp_path: Path) -> None:
    signal = arbitrage(0.3, timestamp=T0)
    with _audience(tmp_path / "full.db", 60, 40) as full:
        Router(full, T0, rates=None).dispatch(signal, T0)  # every recipient queued
        assert full.deliveries.pending_count() == 100
        # What the outbox sends first on each platform, from the whole queue.
        first = {
            platform: [d.user_id for d in full.deliveries.due(T0, 1000, platform)]
            for platform in (TELEGRAM, DISCORD)
        }
    with _audience(tmp_path / "capped.db", 60, 40) as capped:
        plan = Router(capped, T0, rates=RATES).dispatch(signal, T0)
        assert len(plan.recipients) == 100  # routing still chose all of them
        telegram, discord = _cap(1.0, TTL_MS), _cap(0.5, TTL_MS)
        assert (telegram, discord) == (38, 19)
        assert _queued(capped, 1, TELEGRAM) == set(first[TELEGRAM][:telegram])
        assert _queued(capped, 1, DISCORD) == set(first[DISCORD][:discord])
        # The capped queue is sent in the same order as the head of the whole one.
        assert [d.user_id for d in capped.deliveries.due(T0, 1000, TELEGRAM)] == first[TELEGRAM][
            :telegram
        ]
        assert capped.db.scalar("SELECT unqueued FROM signals WHERE id = 1") == 100 - 38 - 19
        assert capped.history.unqueued_count(T0 - 1) == 43
        # Routed again (a replay), the same news queues nothing more and counts the same.
        capped.history.record_signals([(signal, plan)], T0, RATES)
        assert capped.deliveries.pending_count() == 57
        assert capped.history.unqueued_count(T0 - 1) == 43


def test_a_shorter_life_queues_fewer(tmp_path: Path) -> None:
    with _audience(tmp_path / "arbwatch.db", 60, 0) as store:
        signal = arbitrage(0.3, timestamp=T0)  # alive 30 s from T0
        Router(store, T0, rates=RATES).dispatch(signal, T0 + 20_000)  # routed 20 s late
        assert len(_queued(store, 1, TELEGRAM)) == _cap(1.0, TTL_MS - 20_000) == 13


def test_a_burst_shares_each_platform_newest_arbitrage_first(tmp_path: Path) -> None:
    # 30 users on Telegram; at 1 message a second a 30-s signal has room for 38 rows.
    with _audience(tmp_path / "arbwatch.db", 30, 0) as store:
        oldest = arbitrage(0.3, symbol="ETHUSDT", timestamp=T0)
        older = arbitrage(0.3, symbol="SOLUSDT", timestamp=T0 + 1)
        anomaly = other(SignalType.SPREAD_ANOMALY, SignalStrength.STRONG, timestamp=T0 + 3)
        newest = arbitrage(0.3, symbol="BTCUSDT", timestamp=T0 + 2)
        statements: list[str] = []
        store.db.conn.set_trace_callback(statements.append)
        plans = Router(store, T0, rates=RATES).dispatch_many(
            [oldest, older, anomaly, newest], T0 + 3
        )
        store.db.conn.set_trace_callback(None)
        assert [len(p.recipients) for p in plans] == [30, 30, 30, 30]
        ids = {s["symbol"] + s["type"]: s["id"] for s in store.db.rows("SELECT * FROM signals")}
        # The outbox sends arbitrage before other signals and the newest first: the newest
        # arbitrage takes 30 slots, the next 8, the rest have none left (and cost no query).
        room = _cap(1.0, TTL_MS - 3)
        assert room == 38
        assert len(_queued(store, ids["BTCUSDTarbitrage"], TELEGRAM)) == 30
        assert len(_queued(store, ids["SOLUSDTarbitrage"], TELEGRAM)) == 8
        assert _queued(store, ids["ETHUSDTarbitrage"], TELEGRAM) == set()
        assert _queued(store, ids["BTCUSDTspread_anomaly"], TELEGRAM) == set()
        unqueued = store.db.rows("SELECT symbol, unqueued FROM signals ORDER BY id")
        assert [r["unqueued"] for r in unqueued] == [30, 22, 30, 0]
        assert sum(s.startswith("INSERT OR IGNORE INTO deliveries") for s in statements) == 2
        # Nothing on Discord: nobody is there, so it was never asked for.
        assert store.db.scalar("SELECT count(*) FROM deliveries WHERE platform = 'discord'") == 0


def test_the_burst_vs_one_by_one_queue_the_same_when_nothing_is_cut(tmp_path: Path) -> None:
    signals = [arbitrage(0.3, symbol=s, timestamp=T0 + n) for n, s in enumerate(("A", "B", "C"))]
    with _audience(tmp_path / "one.db", 5, 5) as one, _audience(tmp_path / "many.db", 5, 5) as many:
        for signal in signals:
            Router(one, T0).dispatch(signal, T0 + 5)
        Router(many, T0).dispatch_many(signals, T0 + 5)
        query = "SELECT signal, user, platform, spread FROM deliveries ORDER BY signal, user"
        assert many.db.rows(query) == one.db.rows(query)
        assert len(many.db.rows(query)) == 30
        assert many.history.unqueued_count(T0) == 0


def test_admins_see_what_was_not_queued(tmp_path: Path) -> None:
    with _audience(tmp_path / "arbwatch.db", 50, 0) as store:
        Router(store, T0, rates=RATES).dispatch(arbitrage(0.3, timestamp=T0), T0)
        settings = Settings(_env_file=None, admin_user_ids="telegram:1")  # type: ignore[call-arg]
        handler = CommandHandler(store, settings, ["BTCUSDT"])
        ctx = handler.context(Platform.TELEGRAM, "1", "1", "Ann", T0)
        text = handler.handle("/users", ctx).text
        assert "38 alerts waiting to be delivered" in text
        assert "12 alerts not queued in 24 h: more than the platforms' rates could send" in text
