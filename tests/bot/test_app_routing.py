"""The app's routing loop: the signals that queue up while it routes go in one transaction, in
order, opportunities keep their place, and one signal that cannot be stored costs only itself."""

from __future__ import annotations

import dataclasses
import io
import logging

import pytest

from bot.app import now_ms
from bot.config import Settings
from bot.store import ALL_SYMBOLS, Platform, Store
from detector.signals import SignalStrength
from tests.bot.factories import arbitrage, closed
from tests.bot.harness import quiet_market
from tests.bot.waits import until

SYMBOLS = ("BTCUSDT", "ETHUSDT")


async def test_a_burst_is_routed_in_order_and_a_bad_signal_costs_only_itself(
    console_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = console_settings
    with Store(settings.database_path) as store:
        user = store.register(Platform.TELEGRAM, "1", "1", "ann", now_ms())
        store.subscribe(user.id, ALL_SYMBOLS, 0.1, SignalStrength.WEAK, now_ms(), limit=5)
    at = now_ms()
    first = arbitrage(0.2, symbol="BTCUSDT", opened_ms=at, timestamp=at)
    grown = arbitrage(0.3, symbol="BTCUSDT", opened_ms=at, timestamp=at + 1)
    unstorable = dataclasses.replace(
        arbitrage(0.2, symbol="ETHUSDT", opened_ms=at, timestamp=at + 2),
        details={"not json": object()},
    )
    other = arbitrage(0.25, symbol="ETHUSDT", opened_ms=at + 3, timestamp=at + 3)
    async with quiet_market(SYMBOLS) as make_app:
        app = make_app(settings, out=io.StringIO(), err=io.StringIO())
        async with app:
            # Queued at once, as a burst from the detector's callbacks would be.
            for item in (first, grown, closed(first), unstorable, other):
                app._signals.put_nowait(item)
            await until(lambda: app.routed == 3)
    failures = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert failures == ["routing a arbitrage signal failed"]  # the unstorable one, alone
    with Store(settings.database_path) as store:
        rows = store.db.rows("SELECT symbol, net_pct FROM signals ORDER BY id")
        assert rows == [
            {"symbol": "BTCUSDT", "net_pct": 0.2},
            {"symbol": "BTCUSDT", "net_pct": 0.3},
            {"symbol": "ETHUSDT", "net_pct": 0.25},
        ]
        statuses = store.db.rows("SELECT status FROM deliveries ORDER BY signal")
        # The grown alert superseded the first one, still queued: nobody is sent stale news.
        assert [r["status"] for r in statuses] == ["skipped", "pending", "pending"]
        opportunity = store.db.one("SELECT closed_ms FROM opportunities WHERE symbol = 'BTCUSDT'")
        assert opportunity is not None and opportunity["closed_ms"] is not None
