"""SYMBOLS=ALL read again while running, against the loopback venues on 127.0.0.1: a symbol that
joins the market gets its books and connections and signals; one that leaves closes its open
opportunity as delisted and is heard of no more. Every wait is bounded.

The venues' lists here do not change while they run; the exclusion list does, which the detector
treats exactly as a listing and a delisting (the same diff of two mapped markets).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

from detector.analyzer import CloseReason, TrackedOpportunity
from detector.clients.backoff import Backoff
from detector.config import DetectorConfig
from detector.engine import Detector
from detector.feeds import BinanceFeed, BybitFeed
from detector.models import Exchange
from detector.signals import Signal, SignalType
from detector.simulator.scenarios import ArbitrageWindow, Scenario
from detector.simulator.server import SimulatorServer

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
VENUES = (Exchange.BINANCE, Exchange.BYBIT)
FAST_BACKOFF = Backoff(initial_s=0.05, max_s=0.2)


async def until(condition: Callable[[], bool], limit_s: float = 20.0) -> None:
    async with asyncio.timeout(limit_s):
        while not condition():  # noqa: ASYNC110 - the bound is what the test relies on
            await asyncio.sleep(0.02)


def carried(detector: Detector) -> set[str]:
    """Every symbol some connection subscribes (Binance streams, Bybit topics)."""
    binance, bybit = detector.feeds[Exchange.BINANCE], detector.feeds[Exchange.BYBIT]
    assert isinstance(binance, BinanceFeed) and isinstance(bybit, BybitFeed)
    connections = [*binance.public, *binance.market]
    names = {s.partition("@")[0].upper() for c in connections for s in c.streams}
    return names | {t.rpartition(".")[2] for c in bybit.ws for t in c.topics}


async def test_a_listing_joins_and_a_delisting_leaves_while_the_rest_runs_on() -> None:
    windows = (
        ArbitrageWindow(1.0, 40.0, "ETHUSDT", sell_on=Exchange.BYBIT, net_pct=0.3),
        ArbitrageWindow(1.0, 40.0, "SOLUSDT", sell_on=Exchange.BYBIT, net_pct=0.3),
    )
    scenario = Scenario("refresh", "a listing and a delisting", 60.0, windows)
    config = DetectorConfig(
        symbols=("ALL",),
        symbols_exclude=("SOLUSDT",),
        symbols_refresh_s=0.2,
        exchanges=VENUES,
        stale_after_s=2.0,
    )
    async with SimulatorServer(scenario, symbols=SYMBOLS, seed=5) as server:
        detector = Detector(config, server.urls.feed_urls(), ws_options={"backoff": FAST_BACKOFF})
        signals: list[Signal] = []
        closed: list[TrackedOpportunity] = []
        changes: list[tuple[str, ...]] = []
        detector.add_callback(signals.append)
        detector.add_opportunity_callback(closed.append)
        detector.add_universe_callback(changes.append)
        async with detector:
            assert detector.config.symbols == ("BTCUSDT", "ETHUSDT")
            assert carried(detector) == {"BTCUSDT", "ETHUSDT"}
            bybit_before = list(detector.feeds[Exchange.BYBIT].connections)
            await until(lambda: any(s.symbol == "ETHUSDT" for s in signals))
            await until(lambda: len(detector.pipeline.analyzer.open_opportunities()) > 0)

            # SOLUSDT comes in and ETHUSDT goes, at the next refresh (every 0.2 s here).
            detector.config = replace(detector.config, symbols_exclude=("ETHUSDT",))
            await until(lambda: bool(changes))
            assert changes == [("BTCUSDT", "SOLUSDT")]
            assert detector.config.symbols == ("BTCUSDT", "SOLUSDT")
            mark = len(signals)

            eth = [t for t in closed if t.symbol == "ETHUSDT"]
            assert [t.close_reason for t in eth] == [CloseReason.DELISTED]
            assert all(
                o.symbol != "ETHUSDT" for o in detector.pipeline.analyzer.open_opportunities()
            )
            assert detector.pipeline.books("ETHUSDT") == ()
            assert carried(detector) == {"BTCUSDT", "SOLUSDT"}
            # BTCUSDT's connection was never touched; SOLUSDT came on a connection of its own.
            bybit = detector.feeds[Exchange.BYBIT].connections
            assert bybit_before[0] in bybit and bybit_before[0].reconnects == 0
            assert len(bybit) == 2

            await until(lambda: all(b.healthy for b in detector.health().books))
            await until(
                lambda: any(
                    s.symbol == "SOLUSDT" and s.type is SignalType.ARBITRAGE for s in signals[mark:]
                )
            )
            assert all(s.symbol != "ETHUSDT" for s in signals[mark:])
            assert {b.symbol for b in detector.health().books} == {"BTCUSDT", "SOLUSDT"}
            assert detector.internal_errors == 0
