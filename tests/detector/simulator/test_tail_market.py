"""The simulated market beyond the majors: ``market_symbols(N)`` lists the three majors and then
a generated tail (``SIM000USDT`` …) of coins from 0.0001 to 1,000 USDT, each with the tick, lot
and contract size a real venue would give it and feeds as busy or as quiet as its own activity.

The end-to-end test runs the detector with ``SYMBOLS=ALL`` against the loopback venues listing
40 symbols on each of Binance, Bybit and OKX: it finds all 40 in the instrument lists, syncs all
120 books and reports a scripted window on a tail coin at that coin's prices. Every wait is
bounded.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable

import pytest

from detector.config import DetectorConfig
from detector.engine import Detector
from detector.models import Exchange
from detector.signals import Signal, SignalType
from detector.simulator.instruments import (
    MAX_SYMBOLS,
    SUPPORTED_SYMBOLS,
    market_symbols,
    profile,
)
from detector.simulator.market import MarketModel
from detector.simulator.scenarios import ArbitrageWindow, Scenario
from detector.simulator.server import LIVE_RATES, SimulatorServer
from detector.simulator.wire import Frame

VENUES = (Exchange.BINANCE, Exchange.BYBIT, Exchange.OKX)
START_MS = 1_786_540_800_000


def test_the_market_lists_the_majors_then_the_generated_tail() -> None:
    assert market_symbols(2) == ["BTCUSDT", "ETHUSDT"]
    assert market_symbols(6) == [*SUPPORTED_SYMBOLS, "SIM000USDT", "SIM001USDT", "SIM002USDT"]
    assert market_symbols(MAX_SYMBOLS)[-1] == "SIM999USDT"
    for count in (0, MAX_SYMBOLS + 1):
        with pytest.raises(ValueError, match=f"the simulator lists 1 to 1003 symbols, not {count}"):
            market_symbols(count)
    with pytest.raises(ValueError, match="SIM000USDT to SIM999USDT; not 'SIM1000USDT'"):
        profile("SIM1000USDT")


def test_tail_coins_have_the_contracts_a_venue_would_give_them() -> None:
    tail = [profile(s) for s in market_symbols(403)[3:]]
    assert profile("SIM123USDT") == profile("SIM123USDT")  # the same coin every time
    prices = [p.start_price for p in tail]
    assert min(prices) < 0.001 and max(prices) > 100  # the tail spans orders of magnitude
    for p in tail:
        for spec in (p.binance, p.bybit):
            assert 1e-5 < spec.tick / p.start_price <= 1e-4  # a tick of about a basis point
            assert 1.0 < spec.step * p.start_price <= 10.0  # a lot worth a few USDT
        assert 1.0 <= p.okx.ct_val * p.start_price < 10.0  # an OKX contract of 1 to 10 USDT
        assert p.level_qty * p.start_price >= 1_000.0  # levels of 1,000 USDT or more
        assert 0.4 <= p.activity <= 1.0
    assert all(profile(s).activity == 1.0 for s in SUPPORTED_SYMBOLS)


def test_a_quiet_coin_publishes_its_share_of_book_ticks() -> None:
    symbols = market_symbols(23)
    model = MarketModel(symbols, 1, START_MS, rates=LIVE_RATES, venues=VENUES)
    frames = [o for o in model.advance(START_MS + 60_000) if isinstance(o, Frame)]
    books = Counter(f.channel.rpartition(".")[2] for f in frames if "orderbook" in f.channel)
    for symbol in symbols[3:]:
        share = books[symbol] / books["BTCUSDT"]
        assert math.isclose(share, profile(symbol).activity, abs_tol=0.1), symbol


async def until(condition: Callable[[], bool], limit_s: float) -> None:
    async with asyncio.timeout(limit_s):
        while not condition():  # noqa: ASYNC110 - the bound is what the test relies on
            await asyncio.sleep(0.05)


async def test_the_detector_watches_a_40_symbol_market_and_signals_a_tail_coin() -> None:
    symbols = market_symbols(40)
    coin = symbols[-1]  # SIM036USDT
    window = ArbitrageWindow(4.0, 30.0, coin, sell_on=Exchange.BYBIT, net_pct=0.3)
    scenario = Scenario("tail", "a window on a tail coin", 60.0, (window,))
    config = DetectorConfig(symbols=("ALL",), exchanges=VENUES)
    async with SimulatorServer(scenario, symbols=symbols, seed=3) as server:
        detector = Detector(config, server.urls.feed_urls())
        signals: list[Signal] = []
        detector.add_callback(signals.append)
        async with detector:
            assert sorted(detector.config.symbols) == sorted(symbols)  # found by discovery

            def synced() -> bool:
                books = detector.health().books
                return len(books) == 120 and all(b.healthy for b in books)

            def on_coin() -> list[Signal]:  # the scripted pair (Binance also crosses OKX)
                return [
                    s
                    for s in signals
                    if s.type is SignalType.ARBITRAGE
                    and s.symbol == coin
                    and s.details["sell_exchange"] == "bybit"
                ]

            await until(synced, 30.0)
            await until(lambda: bool(on_coin()), 30.0)
            fair = server.model.fair_price(coin)
    details = on_coin()[0].details
    assert details["buy_exchange"] == "binance"
    for price in (details["buy_price"], details["sell_price"]):
        assert math.isclose(price, fair, rel_tol=0.02)  # the coin's own unit and scale
    assert details["net_profit_percentage"] >= 0.1
    # Sizes in coins, not lots or contracts: the crossing levels (each of at least depth_usd,
    # about 20 ticks of them) hold some hundreds of thousands of USDT, as on a major.
    assert window.depth_usd <= details["notional"] <= window.depth_usd * 30
