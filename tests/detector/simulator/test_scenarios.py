"""Scripted events happen at their times, sized for the signal detectors; calm stays calm."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

import orjson
import pytest

from detector.models import Exchange, Source
from detector.recording import Record
from detector.simulator.market import MarketModel
from detector.simulator.scenarios import (
    SCENARIOS,
    ArbitrageWindow,
    FundingShift,
    Scenario,
    build_scenario,
)
from detector.simulator.session import DEFAULT_START_MS, DEFAULT_SYMBOLS
from detector.simulator.state import FEES_PCT
from detector.simulator.wire import Disconnect
from tests.detector.simulator.replica import Replay, Top, at

BINANCE, BYBIT = Exchange.BINANCE, Exchange.BYBIT


def tops(records: list[Record], exchange: Exchange, symbol: str) -> Iterator[tuple[int, Top]]:
    """(receive time, top of book) after every record, while the book is synced."""
    state = Replay()
    for record in records:
        state.feed(record)
        top = state.top(exchange, symbol)
        if top is not None:
            yield record.ts, top


def net_margins(
    records: list[Record], symbol: str, sell_on: Exchange
) -> Iterator[tuple[int, float, float]]:
    """(time, net % after fees, executable notional) of selling on ``sell_on``, buying on the
    other exchange."""
    buy_on = BINANCE if sell_on is BYBIT else BYBIT
    state = Replay()
    for record in records:
        state.feed(record)
        sell, buy = state.top(sell_on, symbol), state.top(buy_on, symbol)
        if sell is not None and buy is not None:
            net = (sell[0] / buy[2] - 1.0) * 100.0 - FEES_PCT
            yield record.ts, net, min(sell[0] * sell[1], buy[2] * buy[3])


def windows(name: str) -> list[ArbitrageWindow]:
    scenario = build_scenario(name, DEFAULT_SYMBOLS)
    return [e for e in scenario.events if isinstance(e, ArbitrageWindow)]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_arbitrage_windows_cross_by_the_scripted_net_margin(
    arbitrage: list[Record], index: int
) -> None:
    window = windows("arbitrage")[index]
    begin, end = at(window.at_s) + 500, at(window.at_s + window.duration_s)
    inside = [
        (net, notional)
        for ts, net, notional in net_margins(arbitrage, window.symbol, window.sell_on)
        if begin <= ts < end
    ]
    assert len(inside) > 100
    assert min(net for net, _ in inside) >= window.net_pct - 0.01
    assert max(net for net, _ in inside) <= window.net_pct + 0.03
    assert min(notional for _, notional in inside) >= 0.9 * window.depth_usd


@pytest.mark.parametrize("sell_on", [BINANCE, BYBIT])
@pytest.mark.parametrize("symbol", DEFAULT_SYMBOLS)
def test_no_crossing_outside_the_windows(
    arbitrage: list[Record], calm: list[Record], symbol: str, sell_on: Exchange
) -> None:
    spans = [(at(w.at_s) - 1000, at(w.at_s + w.duration_s) + 1000) for w in windows("arbitrage")]
    for records, excluded in ((arbitrage, spans), (calm, [])):
        nets = [
            net
            for ts, net, _ in net_margins(records, symbol, sell_on)
            if not any(b <= ts < e for b, e in excluded)
        ]
        assert len(nets) > 5000
        assert max(nets) < -0.08  # the books stay within a few bps of each other


def test_funding_diverges_on_bybit_only(showcase: list[Record]) -> None:
    bybit_rates: list[tuple[int, str]] = []
    binance_rates: list[float] = []
    for record in showcase:
        data = record.data
        if not isinstance(data, dict):
            continue
        if data.get("topic") == "tickers.ETHUSDT" and "fundingRate" in data["data"]:
            bybit_rates.append((record.ts, data["data"]["fundingRate"]))
        elif data.get("stream") == "ethusdt@markPrice":
            binance_rates.append(float(data["data"]["r"]))
    shifted = [ts for ts, rate in bybit_rates if rate == "0.0008"]
    assert shifted
    assert at(30) <= shifted[0] <= at(30.6)
    assert all(abs(float(rate) - 0.0001) < 2e-5 for ts, rate in bybit_rates if ts < at(30))
    assert len(binance_rates) > 80
    assert all(abs(rate - 0.0001) < 2e-5 for rate in binance_rates)


def test_funding_interval_can_change() -> None:
    hour = 3_600_000
    start = DEFAULT_START_MS + 4 * hour  # 17:20 UTC: next 8 h funding at 00:00, 4 h at 20:00
    shifts = (
        FundingShift(5.0, BYBIT, "BTCUSDT", 0.00005, interval_hours=4),
        FundingShift(5.0, BINANCE, "BTCUSDT", 0.00005, interval_hours=4),
    )
    model = MarketModel(["BTCUSDT"], 1, start, Scenario("x", "", 20.0, shifts))
    frames = [f for f in model.advance(start + 12_000) if not isinstance(f, Disconnect)]
    shift_ms = start + 5_000
    eight_h, four_h = (start // (8 * hour) + 1) * 8 * hour, (start // (4 * hour) + 1) * 4 * hour
    assert eight_h != four_h
    tickers = [f.data["data"] for f in frames if f.channel == "tickers.BTCUSDT"]
    changed = next(t for t in tickers if "fundingIntervalHour" in t)
    assert changed["fundingIntervalHour"] == "4"
    assert changed["fundingRate"] == "0.00005"
    assert changed["nextFundingTime"] == str(four_h)
    marks = [f.data["data"] for f in frames if f.channel == "btcusdt@markPrice"]
    assert {(m["r"], m["T"]) for m in marks if m["E"] < shift_ms} == {("0.00010000", eight_h)}
    assert {(m["r"], m["T"]) for m in marks if m["E"] >= shift_ms} == {("0.00005000", four_h)}


def quote_volume(
    records: list[Record], exchange: Exchange, symbol: str, begin: int, end: int
) -> float:
    total = 0.0
    for record in records:
        data = record.data
        if (
            record.exchange is not exchange
            or not begin <= record.ts < end
            or not isinstance(data, dict)
        ):
            continue
        if data.get("topic") == f"publicTrade.{symbol}":
            total += sum(float(t["p"]) * float(t["v"]) for t in data["data"])
        elif data.get("stream") == f"{symbol.lower()}@aggTrade":
            total += float(data["data"]["p"]) * float(data["data"]["q"])
    return total


def test_volume_spike_multiplies_the_traded_volume(showcase: list[Record]) -> None:
    per_s_before = quote_volume(showcase, BYBIT, "ETHUSDT", at(80), at(150)) / 70
    per_s_spike = quote_volume(showcase, BYBIT, "ETHUSDT", at(150), at(156)) / 6
    assert per_s_spike >= 10 * per_s_before
    binance_before = quote_volume(showcase, BINANCE, "ETHUSDT", at(80), at(150)) / 70
    binance_spike = quote_volume(showcase, BINANCE, "ETHUSDT", at(150), at(156)) / 6
    assert binance_spike < 3 * binance_before  # only one exchange spikes


def mid_at(series: list[tuple[int, Top]], ts: int) -> float:
    top = next(top for t, top in reversed(series) if t <= ts)
    return (top[0] + top[2]) / 2.0


def test_momentum_moves_the_price_one_percent_in_seconds(showcase: list[Record]) -> None:
    for exchange in (BINANCE, BYBIT):
        series = list(tops(showcase, exchange, "BTCUSDT"))
        move = mid_at(series, at(188)) / mid_at(series, at(184.9)) - 1.0
        assert 0.009 <= move <= 0.011
        calm_before = mid_at(series, at(184.9)) / mid_at(series, at(124.9)) - 1.0
        assert abs(calm_before) < 0.0015


def spreads_bps(series: list[tuple[int, Top]], begin: int, end: int) -> list[float]:
    return [
        (top[2] - top[0]) / ((top[2] + top[0]) / 2.0) * 1e4
        for ts, top in series
        if begin <= ts < end
    ]


def test_spread_blowout_widens_one_book(showcase: list[Record]) -> None:
    binance = list(tops(showcase, BINANCE, "BTCUSDT"))
    assert min(spreads_bps(binance, at(125.5), at(133))) >= 5.0
    assert max(spreads_bps(binance, at(60), at(125))) < 0.1
    bybit = list(tops(showcase, BYBIT, "BTCUSDT"))
    assert max(spreads_bps(bybit, at(125.5), at(133))) < 0.1


def test_calm_market_is_quiet(calm: list[Record]) -> None:
    for exchange in (BINANCE, BYBIT):
        for symbol in DEFAULT_SYMBOLS:
            series = list(tops(calm, exchange, symbol))
            tick = 0.1 if symbol == "BTCUSDT" else 0.01
            assert max(top[2] - top[0] for _, top in series) <= 2 * tick + 1e-9
            # Momentum breaks need 0.15 % beyond the previous bar: one-second moves stay far below.
            seconds = range(at(1), at(149), 1000)
            mids = [mid_at(series, ts) for ts in seconds]
            assert max(abs(b / a - 1.0) for a, b in pairwise(mids)) < 0.0004
            # Volume spikes need 4x the mean bucket: the 5 s buckets stay steady.
            buckets = [
                quote_volume(calm, exchange, symbol, t, t + 5000)
                for t in range(at(10), at(145), 5000)
            ]
            mean = sum(buckets) / len(buckets)
            assert max(buckets) < 3 * mean


def test_stale_feed_is_silence_on_one_exchange(showcase: list[Record]) -> None:
    silent = [r for r in showcase if at(68) + 100 < r.ts < at(76)]
    assert {r.exchange for r in silent} == {BINANCE}
    assert len(silent) > 100
    # The crossing ended at 75 s while Bybit was silent: its last book still shows it.
    margins = [
        (ts, net) for ts, net, _ in net_margins(showcase, "ETHUSDT", BYBIT) if at(69) < ts < at(76)
    ]
    assert max(net for ts, net in margins if ts < at(75)) >= 0.14
    assert min(net for ts, net in margins if ts >= at(75.5)) > 0  # stale Bybit bid vs fresh Binance


def test_faults_scenario_has_malformed_frames(faults: list[Record]) -> None:
    truncated = [r for r in faults if isinstance(r.data, str)]
    assert len(truncated) == 1
    assert truncated[0].endpoint == "/public/stream"
    assert at(50) <= truncated[0].ts <= at(51)
    assert truncated[0].data.startswith('{"stream":"ethusdt@depth@100ms","data":{"e":"depthUpdate"')
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(truncated[0].data)
    bad = []
    for record in faults:
        data = record.data
        if isinstance(data, dict) and data.get("topic") == "orderbook.50.BTCUSDT":
            for price, _ in data["data"]["b"] + data["data"]["a"]:
                try:
                    float(price)
                except ValueError:
                    bad.append(record.ts)
    assert len(bad) == 1
    assert at(60) <= bad[0] <= at(61)


def test_dropped_connections_show_as_silence_then_a_fresh_start(faults: list[Record]) -> None:
    def silent(exchange: Exchange, begin: float, end: float) -> bool:
        return not any(r.exchange is exchange and at(begin) + 100 < r.ts < at(end) for r in faults)

    assert silent(BINANCE, 105, 110)
    assert not silent(BYBIT, 105, 110)
    rest = {r.endpoint for r in faults if r.source is Source.REST and at(110) <= r.ts <= at(111)}
    assert rest == {f"/fapi/v1/depth?symbol={s}&limit=1000" for s in DEFAULT_SYMBOLS}
    assert silent(BYBIT, 125, 130)
    after = [r.data for r in faults if r.exchange is BYBIT and at(130) <= r.ts <= at(130.5)]
    acks = [d for d in after if d.get("op") == "subscribe"]
    assert len(acks) == 2
    first_conn = next(r.data["conn_id"] for r in faults if r.exchange is BYBIT)
    assert acks[0]["conn_id"] != first_conn
    snapshots = [
        d["topic"]
        for d in after
        if d.get("type") == "snapshot" and "topic" in d and "orderbook" in d["topic"]
    ]
    assert snapshots == ["orderbook.50.BTCUSDT", "orderbook.50.ETHUSDT"]


def test_model_announces_dropped_connections() -> None:
    scenario = build_scenario("faults", DEFAULT_SYMBOLS)
    model = MarketModel(DEFAULT_SYMBOLS, 1, DEFAULT_START_MS, scenario)
    drops = [o for o in model.advance(at(140)) if isinstance(o, Disconnect)]
    assert drops == [
        Disconnect(at(105), BINANCE, at(110)),
        Disconnect(at(125), BYBIT, at(130)),
    ]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_runs_on_any_symbols(name: str) -> None:
    for symbols in (["SOLUSDT"], ["BTCUSDT", "ETHUSDT", "SOLUSDT"]):
        scenario = build_scenario(name, symbols)
        assert scenario.name == name
        assert len(scenario.timeline()) == len(scenario.events)
        assert all(0 < e.at_s < scenario.duration_s for e in scenario.events)
        MarketModel(symbols, 1, DEFAULT_START_MS, scenario)  # every symbol is simulated


def test_unknown_scenarios_are_refused() -> None:
    with pytest.raises(ValueError, match="showcase"):
        build_scenario("nope", DEFAULT_SYMBOLS)
