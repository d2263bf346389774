"""The simulated market beyond the majors: ``market_symbols(N)`` lists the three majors and then
a generated tail (``SIM000USDT`` …) of coins from 0.0001 to 1,000 USDT, each with the tick, lot
and contract size a real venue would give it and feeds as busy or as quiet as its own activity.

A few tail coins are set apart as in the real market: quoted per 1,000 coins on Binance and
Bybit (``1000SIM005USDT``; OKX quotes the coin, ``SIM005-USDT-SWAP``), a name Bybit gives another
coin (``SIM017USDT``, 100 times the price) and coins listed on one venue only.

The end-to-end test runs the detector with ``SYMBOLS=ALL`` against the loopback venues listing
40 symbols on each of Binance, Bybit and OKX: it finds all 40 in the instrument lists, syncs
every book, quarantines the collision (its venues disagree 100 to 1) and reports scripted
windows on a tail coin and across the multiplier pair at the canonical unit's prices, while the
window on the collision never signals. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from bot.messages import signal_venues
from detector.config import DetectorConfig
from detector.engine import Detector
from detector.models import Exchange
from detector.signals import Signal, SignalType
from detector.simulator.instruments import (
    MAX_SYMBOLS,
    SUPPORTED_SYMBOLS,
    market_symbols,
    okx_inst_id,
    profile,
)
from detector.simulator.market import MarketModel
from detector.simulator.scenarios import ArbitrageWindow, Scenario
from detector.simulator.server import LIVE_RATES, SimulatorServer
from detector.simulator.server_catalog import (
    binance_exchange_info,
    bybit_instruments,
    okx_instruments,
)
from detector.simulator.wire import Frame
from detector.universe import build_universe
from detector.venues.instruments import (
    parse_binance_exchange_info,
    parse_bybit_instruments,
    parse_okx_instruments,
)

VENUES = (Exchange.BINANCE, Exchange.BYBIT, Exchange.OKX)
START_MS = 1_786_540_800_000


def test_the_market_lists_the_majors_then_the_generated_tail() -> None:
    assert market_symbols(2) == ["BTCUSDT", "ETHUSDT"]
    assert market_symbols(6) == [*SUPPORTED_SYMBOLS, "SIM000USDT", "SIM001USDT", "SIM002USDT"]
    assert market_symbols(MAX_SYMBOLS)[-1] == "SIM999USDT"
    assert market_symbols(9)[-1] == "1000SIM005USDT"  # quoted per 1,000 coins
    with pytest.raises(ValueError, match="not 'SIM005USDT'"):
        profile("SIM005USDT")  # listed as 1000SIM005USDT
    with pytest.raises(ValueError, match="not '1000SIM006USDT'"):
        profile("1000SIM006USDT")
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


def test_a_multiplier_coin_is_printed_per_1000_coins_on_binance_and_bybit() -> None:
    p = profile("1000SIM005USDT")
    ticks = round(p.start_price / p.binance.tick)
    for spec in (p.binance, p.bybit):
        assert math.isclose(float(spec.price_str(ticks)), ticks * spec.tick * 1000, rel_tol=1e-9)
        assert math.isclose(float(spec.qty_str(3)), 3 * spec.step / 1000, rel_tol=1e-9)
    assert float(p.binance.price_str(ticks)) > 1e-4  # a unit of 1,000 coins
    assert okx_inst_id(p.symbol) == "SIM005-USDT-SWAP"  # OKX: the coin, in contracts of ctVal
    assert 1.0 <= p.okx.ct_val * p.start_price < 10.0
    collision = profile("SIM017USDT")
    ticks = round(collision.start_price / collision.bybit.tick)
    bybit, binance = collision.bybit.price_str(ticks), collision.binance.price_str(ticks)
    assert math.isclose(float(bybit), 100 * float(binance), rel_tol=1e-9)  # another coin


def test_the_detector_maps_the_simulated_lists_by_coin_and_multiplier() -> None:
    profiles = {s: profile(s) for s in market_symbols(103)}  # the tail up to SIM099USDT
    hours = dict.fromkeys(profiles, 8)
    universe = build_universe(
        {
            Exchange.BINANCE: parse_binance_exchange_info(binance_exchange_info(profiles, 0)),
            Exchange.BYBIT: parse_bybit_instruments(
                [{"retCode": 0, "result": {"list": bybit_instruments(profiles, hours)}}]
            ),
            Exchange.OKX: parse_okx_instruments({"code": "0", "data": okx_instruments(profiles)}),
        }
    )
    multiplied = universe.markets["1000SIM005USDT"]
    assert multiplied.coin == "SIM005" and multiplied.multiplier == 1000.0
    assert multiplied.listings[Exchange.BYBIT].factor == 1.0
    okx = multiplied.listings[Exchange.OKX]
    # OKX prices a coin: divided by 0.001 they are per 1,000 coins, the canonical unit.
    assert okx.venue_symbol == "SIM005-USDT-SWAP" and okx.factor == 0.001
    assert set(universe.markets["SIM017USDT"].listings) == set(VENUES)  # quarantined on prices
    assert universe.one_venue == {"SIM061USDT": Exchange.BINANCE, "SIM083USDT": Exchange.BYBIT}
    assert len(universe.markets) == 101


def test_a_quiet_coin_publishes_its_share_of_book_ticks() -> None:
    symbols = market_symbols(23)
    model = MarketModel(symbols, 1, START_MS, rates=LIVE_RATES, venues=VENUES)
    frames = [o for o in model.advance(START_MS + 60_000) if isinstance(o, Frame)]
    books = Counter(f.channel.rpartition(".")[2] for f in frames if "orderbook" in f.channel)
    for symbol in symbols[3:]:
        share = books[symbol] / books["BTCUSDT"]
        assert math.isclose(share, profile(symbol).activity, abs_tol=0.1), symbol


async def test_a_one_venue_coin_exists_on_its_venue_only() -> None:
    symbols = ["BTCUSDT", "SIM061USDT", "SIM083USDT"]  # on Binance only, on Bybit only
    model = MarketModel(symbols, 1, START_MS, rates=LIVE_RATES, venues=VENUES)
    frames = [o for o in model.advance(START_MS + 5_000) if isinstance(o, Frame)]
    published = {(f.exchange, s) for f in frames for s in symbols[1:] if s in str(f.data)}
    assert published == {(Exchange.BINANCE, "SIM061USDT"), (Exchange.BYBIT, "SIM083USDT")}
    server = SimulatorServer(Scenario("calm", "", 10.0), symbols=symbols)
    async with server, httpx.AsyncClient(base_url=server.urls.binance_rest) as http:
        depth = await http.get("/fapi/v1/depth", params={"symbol": "SIM083USDT"})
        listed = await http.get("/fapi/v1/depth", params={"symbol": "SIM061USDT"})
        book = await http.get(
            "/v5/market/orderbook", params={"category": "linear", "symbol": "SIM061USDT"}
        )
    assert depth.status_code == 400 and depth.json()["code"] == -1121
    assert listed.status_code == 200
    assert book.json()["retCode"] == 10001


async def until(condition: Callable[[], bool], limit_s: float) -> None:
    async with asyncio.timeout(limit_s):
        while not condition():  # noqa: ASYNC110 - the bound is what the test relies on
            await asyncio.sleep(0.05)


async def test_the_detector_watches_a_40_symbol_market_and_signals_a_tail_coin() -> None:
    symbols = market_symbols(40)
    coin, multiplied, collision = "SIM036USDT", "1000SIM005USDT", "SIM017USDT"
    windows = (
        ArbitrageWindow(4.0, 30.0, coin, sell_on=Exchange.BYBIT, net_pct=0.3),
        # Across the units: OKX quotes the coin in contracts, Binance 1,000 coins a unit.
        ArbitrageWindow(4.0, 30.0, multiplied, sell_on=Exchange.BINANCE, buy_on=Exchange.OKX),
        ArbitrageWindow(4.0, 30.0, collision, sell_on=Exchange.BYBIT, net_pct=0.3),
    )
    scenario = Scenario("tail", "windows on tail coins", 60.0, windows)
    config = DetectorConfig(symbols=("ALL",), exchanges=VENUES)
    async with SimulatorServer(scenario, symbols=symbols, seed=3) as server:
        detector = Detector(config, server.urls.feed_urls())
        signals: list[Signal] = []
        detector.add_callback(signals.append)
        async with detector:
            assert sorted(detector.config.symbols) == sorted(symbols)  # found by discovery

            def synced() -> bool:  # every book, but those quarantined (they are not watched)
                health = detector.health()
                books = health.books
                watched = len(books) + len(health.quarantined) == 120
                return watched and all(b.state == "synced" for b in books)

            def arbitrage(symbol: str, sell_on: str) -> list[Signal]:
                return [
                    s
                    for s in signals
                    if s.type is SignalType.ARBITRAGE
                    and s.symbol == symbol
                    and s.details["sell_exchange"] == sell_on
                ]

            await until(synced, 30.0)
            await until(lambda: bool(arbitrage(coin, "bybit")), 30.0)
            await until(lambda: bool(arbitrage(multiplied, "binance")), 30.0)
            fair = {s: server.model.fair_price(s) for s in (coin, multiplied)}
            health = detector.health()
    # The collision: Bybit's SIM017 is another coin. Quarantined, never compared, never signalled.
    # The first two books to sync disagree: both are held until the third tells which is odd, so
    # the genuine OKX book stays watched (and the window's moved Binance ask may cross it).
    assert health.quarantined == [f"bybit {collision}"]
    assert not [s for s in signals if s.symbol == collision and "bybit" in signal_venues(s)]
    for symbol, sell_on, unit in ((coin, "bybit", 1.0), (multiplied, "binance", 1000.0)):
        details = arbitrage(symbol, sell_on)[0].details
        assert details["net_profit_percentage"] >= 0.1
        for price in (details["buy_price"], details["sell_price"]):
            assert math.isclose(price, fair[symbol] * unit, rel_tol=0.02), symbol  # canonical unit
        # Sizes in canonical units, not lots or contracts: the crossing levels (each of at least
        # depth_usd, about 20 ticks of them) hold some hundreds of thousands of USDT.
        depth = windows[0].depth_usd
        assert depth <= details["notional"] <= depth * 30, symbol
    assert arbitrage(multiplied, "binance")[0].details["buy_exchange"] == "okx"
