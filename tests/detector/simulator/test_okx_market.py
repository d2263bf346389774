"""OKX in the market model and its recordings: its own book around the common fair price, the
seqId chain with its scripted breaks, contract sizes, windows against one other venue only,
and nothing changed for Binance and Bybit."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from statistics import median
from typing import Any

import orjson
import pytest

from detector.models import Exchange, Source
from detector.recording import Record
from detector.simulator import scenarios
from detector.simulator.market import MarketModel, resolve_venues
from detector.simulator.scenarios import (
    SCENARIOS,
    ArbitrageWindow,
    ConnectionDrop,
    FundingShift,
    MalformedFrame,
    Scenario,
    SequenceGap,
    SequenceReset,
    SpreadBlowout,
    StaleFeed,
    VolumeSpike,
    build_scenario,
)
from detector.simulator.server import LIVE_RATES
from detector.simulator.session import DEFAULT_START_MS, DEFAULT_SYMBOLS, generate_records
from detector.simulator.state import TAKER_FEE_PCT
from detector.simulator.wire import Disconnect, Frame, Malformation
from tests.detector.simulator.replica import Replay, Top, at

BINANCE, BYBIT, OKX = Exchange.BINANCE, Exchange.BYBIT, Exchange.OKX
ALL = tuple(Exchange)


def okx_books(records: list[Record], inst_id: str) -> list[dict[str, Any]]:
    """The ``books`` payloads of one instrument, in receive order."""
    return [
        r.data
        for r in records
        if r.exchange is OKX
        and isinstance(r.data, dict)
        and r.data.get("arg") == {"channel": "books", "instId": inst_id}
        and "action" in r.data
    ]


def tops(records: list[Record], exchange: Exchange, symbol: str) -> Iterator[tuple[int, Top]]:
    state = Replay()
    for record in records:
        state.feed(record)
        top = state.top(exchange, symbol)
        if top is not None:
            yield record.ts, top


def net_margins(
    records: list[Record], symbol: str, buy_on: Exchange, sell_on: Exchange
) -> Iterator[tuple[int, float, float]]:
    """(time, net % after both taker fees, executable notional) of buying on ``buy_on`` at its
    ask and selling on ``sell_on`` at its bid (sizes in base units: OKX's converted)."""
    fees = TAKER_FEE_PCT[buy_on] + TAKER_FEE_PCT[sell_on]
    state = Replay()
    for record in records:
        state.feed(record)
        sell, buy = state.top(sell_on, symbol), state.top(buy_on, symbol)
        if sell is not None and buy is not None:
            net = (sell[0] / buy[2] - 1.0) * 100.0 - fees
            yield record.ts, net, min(sell[0] * sell[1], buy[2] * buy[3])


# -- the others see nothing new --------------------------------------------------------------
def test_recordings_hold_binance_and_bybit_unless_asked(faults: list[Record]) -> None:
    assert {r.exchange for r in faults} == {BINANCE, BYBIT}
    assert scenarios.WITH_OKX is False
    assert resolve_venues(None) == (BINANCE, BYBIT)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_okx_changes_no_binance_or_bybit_frame(name: str) -> None:
    """The same seed gives Binance and Bybit the same frames and answers with OKX simulated."""
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    scenario = build_scenario(name, symbols, okx=False)
    start = DEFAULT_START_MS + 123
    runs = []
    for venues in (None, ALL):
        model = MarketModel(symbols, 1, start, scenario, LIVE_RATES, venues=venues)
        seen: list[Any] = []
        for step in range(1, 1501):  # 30 s in the server's 20 ms ticks
            for out in model.advance(start + step * 20):
                if out.exchange is not OKX:
                    seen.append(out)
            if step % 97 == 0:
                for s in symbols:
                    seen += [model.binance_depth_snapshot(s), model.bybit_orderbook_snapshot(s)]
                    seen += [model.bybit_tickers_snapshot(s), model.fair_price(s)]
        runs.append(seen)
    assert runs[0] == runs[1]
    assert len(runs[0]) > 3000


@pytest.mark.parametrize("name", ["showcase", "live_faults"])
def test_okx_changes_no_binance_or_bybit_record(name: str) -> None:
    scenario = build_scenario(name, DEFAULT_SYMBOLS, okx=False)
    plain = list(generate_records(scenario, duration_s=60))
    with_okx = list(generate_records(scenario, duration_s=60, venues=ALL))
    assert [r for r in with_okx if r.exchange is not OKX] == plain
    assert len(with_okx) > len(plain) + 1000


def test_okx_faults_leave_binance_and_bybit_alone() -> None:
    """Only the OKX variants' windows touch another venue's book: ``live_faults`` with its OKX
    events keeps every Binance record (its OKX window is against Bybit)."""
    plain = list(generate_records("live_faults"))
    okx = list(generate_records("live_faults", venues=ALL))
    assert [r for r in okx if r.exchange is BINANCE] == [r for r in plain if r.exchange is BINANCE]


def test_same_seed_same_okx_records() -> None:
    first = [r.to_json() for r in generate_records("live_faults", venues=ALL, duration_s=10)]
    again = [r.to_json() for r in generate_records("live_faults", venues=ALL, duration_s=10)]
    other = [
        r.to_json() for r in generate_records("live_faults", venues=ALL, duration_s=10, seed=2)
    ]
    assert first == again != other


# -- the book --------------------------------------------------------------------------------
def test_okx_recording_starts_with_the_instruments_it_converts_with(
    okx_faults: list[Record],
) -> None:
    first = next(r for r in okx_faults if r.exchange is OKX)
    assert first.source is Source.REST
    assert first.endpoint == "/api/v5/public/instruments?instType=SWAP"
    ct_val = {i["instId"]: i["ctVal"] for i in first.data["data"] if i["settleCcy"] == "USDT"}
    assert ct_val["BTC-USDT-SWAP"] == "0.01" and ct_val["ETH-USDT-SWAP"] == "0.1"


def test_okx_seq_ids_chain_except_where_scripted(okx_faults: list[Record]) -> None:
    replay = Replay()
    for record in okx_faults:
        replay.feed(record)
    btc, eth = replay.okx["BTCUSDT"], replay.okx["ETHUSDT"]
    # SequenceGap(28 s, OKX, BTCUSDT): one break, then a resubscription; the drop at 140 s is
    # no break (the client reconnects and starts from a snapshot).
    assert len(btc.gaps) == 1 and at(28) <= btc.gaps[0] <= at(28.3)
    assert eth.gaps == []
    # SequenceReset(42 s, OKX, ETHUSDT): seqId falls below prevSeqId once, the chain holds.
    assert len(eth.resets) == 1 and at(42) <= eth.resets[0] <= at(42.3)
    assert btc.resets == []
    assert btc.keepalives + eth.keepalives > 10
    assert btc.checksums_checked > 1000 and eth.checksums_checked > 1000
    assert len(btc.snapshots) == 3 and len(eth.snapshots) == 2  # start, resync, reconnect


def test_every_update_names_the_previous_seq_id(okx_faults: list[Record]) -> None:
    frames = okx_books(okx_faults, "ETH-USDT-SWAP")
    last = None
    for frame in frames:
        data = frame["data"][0]
        if frame["action"] == "snapshot":
            assert data["prevSeqId"] == -1
        else:
            assert data["prevSeqId"] == last
            if data["seqId"] == data["prevSeqId"]:
                assert data["asks"] == data["bids"] == []
        last = data["seqId"]


def test_a_broken_chain_resubscribes_that_one_book(okx_faults: list[Record]) -> None:
    after = [r.data for r in okx_faults if r.exchange is OKX and at(28) <= r.ts <= at(29)]
    events = [(d["event"], d["arg"]["instId"]) for d in after if "event" in d]
    assert events == [("unsubscribe", "BTC-USDT-SWAP"), ("subscribe", "BTC-USDT-SWAP")]
    snapshots = [d for d in after if d.get("action") == "snapshot"]
    assert [s["arg"]["instId"] for s in snapshots] == ["BTC-USDT-SWAP"]


def test_a_drop_is_silence_then_a_new_connection(okx_faults: list[Record]) -> None:
    okx = [r for r in okx_faults if r.exchange is OKX]
    assert not [r for r in okx if at(140) + 100 < r.ts < at(144)]
    acks = [r.data for r in okx if "event" in r.data]
    first, last = acks[0]["connId"], acks[-1]["connId"]
    assert first != last and len(last) == 8
    again = [a for a in acks if a["connId"] == last]
    assert len(again) == 4 * len(DEFAULT_SYMBOLS)  # every channel of every symbol


def test_sizes_are_contracts_of_ct_val(okx_three_symbols: list[Record]) -> None:
    replay = Replay()
    levels: dict[str, list[list[str]]] = {}
    for record in okx_three_symbols:
        replay.feed(record)
        data = record.data
        if record.exchange is OKX and isinstance(data, dict) and "action" in data:
            levels.setdefault(data["arg"]["instId"], []).extend(
                data["data"][0]["bids"] + data["data"][0]["asks"]
            )
    for inst_id, decimals in (("BTC-USDT-SWAP", 1), ("ETH-USDT-SWAP", 2), ("SOL-USDT-SWAP", 2)):
        for px, sz, liquidated, orders in levels[inst_id]:
            assert liquidated == "0"
            for text, dp in ((px, decimals), (sz, 2)):
                whole, _, frac = text.partition(".")
                assert whole.isdigit() and len(frac) <= dp and not frac.endswith("0"), text
            assert (sz == "0") == (orders == "0")
    # In base units an OKX level is the size of a Binance one (ctVal converts).
    for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
        okx = median(top[1] for _, top in tops(okx_three_symbols, OKX, symbol))
        binance = median(top[1] for _, top in tops(okx_three_symbols, BINANCE, symbol))
        assert 0.1 < okx / binance < 10, symbol


def test_the_okx_book_sits_at_the_common_fair_price(okx_showcase: list[Record]) -> None:
    okx = list(tops(okx_showcase, OKX, "ETHUSDT"))
    binance = dict(tops(okx_showcase, BINANCE, "ETHUSDT"))
    assert len(okx) > 1000
    times = sorted(binance)
    for ts, top in okx[::50]:
        if at(60) <= ts <= at(76) or at(235) <= ts <= at(251):
            continue  # crossings
        other = binance[max(t for t in times if t <= ts)] if ts > times[0] else None
        if other is None:
            continue
        okx_mid, binance_mid = (top[0] + top[2]) / 2, (other[0] + other[2]) / 2
        assert abs(okx_mid / binance_mid - 1) < 3e-4
        assert top[0] < top[2]  # never crossed


# -- windows ---------------------------------------------------------------------------------
def okx_windows() -> list[ArbitrageWindow]:
    scenario = build_scenario("arbitrage", DEFAULT_SYMBOLS, okx=True)
    return [e for e in scenario.events if isinstance(e, ArbitrageWindow) and OKX in e.venues]


@pytest.mark.parametrize("index", [0, 1])
def test_a_window_opens_between_okx_and_one_other_venue(
    okx_arbitrage: list[Record], index: int
) -> None:
    window = okx_windows()[index]
    buy, sell = window.venues
    third = next(e for e in ALL if e not in window.venues)
    begin, end = at(window.at_s + 0.5), at(window.at_s + window.duration_s)
    inside = [
        (net, notional)
        for ts, net, notional in net_margins(okx_arbitrage, window.symbol, buy, sell)
        if begin <= ts < end
    ]
    assert len(inside) > 100
    # As for Binance-Bybit windows: the fair price walks between the two books' updates.
    assert min(net for net, _ in inside) >= window.net_pct - 0.01
    assert max(net for net, _ in inside) <= window.net_pct + 0.03
    assert min(notional for _, notional in inside) >= 0.9 * window.depth_usd
    # The third venue crosses neither of them by a margin worth an alert.
    for a, b in ((buy, third), (third, sell), (third, buy), (sell, third)):
        nets = [
            net
            for ts, net, _ in net_margins(okx_arbitrage, window.symbol, a, b)
            if begin <= ts < end
        ]
        assert max(nets) < 0.1, (a, b)


def test_arbitrage_windows_name_their_venues() -> None:
    assert ArbitrageWindow(1.0, 1.0, "BTCUSDT").venues == (BINANCE, BYBIT)
    assert ArbitrageWindow(1.0, 1.0, "BTCUSDT", sell_on=BINANCE).venues == (BYBIT, BINANCE)
    assert ArbitrageWindow(1.0, 1.0, "BTCUSDT", sell_on=OKX).venues == (BINANCE, OKX)
    window = ArbitrageWindow(1.0, 1.0, "BTCUSDT", sell_on=BYBIT, buy_on=OKX)
    assert window.venues == (OKX, BYBIT)
    with pytest.raises(ValueError, match="two venues"):
        ArbitrageWindow(1.0, 1.0, "BTCUSDT", sell_on=OKX, buy_on=OKX)
    timeline = Scenario("t", "", 5.0, (window, ArbitrageWindow(2.0, 1.0, "ETHUSDT"))).timeline()
    assert timeline[0].endswith("depth_usd=50000.0 buy_on=okx")
    assert timeline[1].endswith("depth_usd=50000.0")  # as before OKX


# -- faults and other events in the model ----------------------------------------------------
def test_okx_events_need_okx_simulated() -> None:
    scenario = Scenario("t", "", 5.0, (SequenceGap(1.0, OKX, "BTCUSDT"),))
    with pytest.raises(ValueError, match="okx, not simulated"):
        MarketModel(["BTCUSDT"], 1, DEFAULT_START_MS, scenario, venues=(BINANCE, BYBIT))
    assert MarketModel(["BTCUSDT"], 1, DEFAULT_START_MS, scenario).venues == ALL
    with pytest.raises(ValueError, match="binance and bybit"):
        MarketModel(["BTCUSDT"], 1, DEFAULT_START_MS, venues=(OKX,))
    with pytest.raises(ValueError, match="only OKX"):
        SequenceReset(1.0, BYBIT, "BTCUSDT")
    with pytest.raises(ValueError, match="does not simulate OKX"):
        MarketModel(["BTCUSDT"], 1, DEFAULT_START_MS).okx_books_snapshot("BTCUSDT")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_has_an_okx_variant(name: str) -> None:
    plain = build_scenario(name, DEFAULT_SYMBOLS)
    okx = build_scenario(name, DEFAULT_SYMBOLS, okx=True)
    assert okx.events[: len(plain.events)] == plain.events  # OKX's come on top
    assert all(0 < e.at_s < okx.duration_s for e in okx.events)
    assert len(okx.timeline()) == len(okx.events)
    MarketModel(DEFAULT_SYMBOLS, 1, DEFAULT_START_MS, okx)
    if name in ("faults", "live_faults"):
        kinds = {type(e).__name__ for e in okx.events if OKX in _venues(e)}
        assert {"SequenceGap", "SequenceReset", "ConnectionDrop", "RefusedTopic"} <= kinds
    if name in ("arbitrage", "demo", "showcase"):
        assert any(isinstance(e, ArbitrageWindow) and OKX in e.venues for e in okx.events)


def _venues(event: Any) -> set[Exchange]:
    return scenarios.scenario_venues([event])


def test_with_okx_switches_every_scenario(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scenarios, "WITH_OKX", True)
    assert build_scenario("faults", DEFAULT_SYMBOLS) == build_scenario(
        "faults", DEFAULT_SYMBOLS, okx=True
    )
    assert build_scenario("faults", DEFAULT_SYMBOLS, okx=False) != build_scenario(
        "faults", DEFAULT_SYMBOLS
    )


def run(
    events: tuple[Any, ...], seconds: float, symbols: tuple[str, ...] = ("BTCUSDT",)
) -> list[Frame]:
    model = MarketModel(symbols, 1, DEFAULT_START_MS, Scenario("t", "", seconds, events))
    return [o for o in model.advance(at(seconds)) if isinstance(o, Frame) and o.exchange is OKX]


def test_a_stall_holds_okx_back_then_one_update_carries_the_changes() -> None:
    frames = run((StaleFeed(1.0, 2.0, OKX),), 4.0)
    assert not [f for f in frames if at(1) <= f.ts < at(3)]
    books = [f.data["data"][0] for f in frames if f.channel.startswith("books:")]
    assert all(b["prevSeqId"] == a["seqId"] for a, b in pairwise(books))
    first_after = next(
        f.data["data"][0] for f in frames if f.ts >= at(3) and f.channel.startswith("books:")
    )
    assert len(first_after["bids"]) + len(first_after["asks"]) > 10


def test_malformed_okx_frames() -> None:
    events = (
        MalformedFrame(1.0, OKX, "BTCUSDT", Malformation.TRUNCATED_JSON),
        MalformedFrame(2.0, OKX, "BTCUSDT", Malformation.BAD_PRICE),
    )
    bad = [f for f in run(events, 3.0) if f.malformed]
    assert len(bad) == 2
    truncated, garbled = bad
    assert isinstance(truncated.data, str) and truncated.data.startswith(
        '{"arg":{"channel":"books"'
    )
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(truncated.data)
    side = garbled.data["data"][0]["bids"] or garbled.data["data"][0]["asks"]
    with pytest.raises(ValueError):
        float(side[0][0])


def test_okx_funding_follows_a_shift_at_once_with_its_interval() -> None:
    frames = run((FundingShift(2.0, OKX, "BTCUSDT", -0.0003, interval_hours=4),), 3.0)
    funding = [f for f in frames if f.channel == "funding-rate:BTC-USDT-SWAP"]
    assert funding and at(2) <= funding[0].ts <= at(2.5)
    data = funding[0].data["data"][0]
    assert data["fundingRate"] == "-0.0003"
    assert int(data["nextFundingTime"]) - int(data["fundingTime"]) == 4 * 3_600_000
    assert int(data["fundingTime"]) % (4 * 3_600_000) == 0 and int(data["ts"]) < int(
        data["fundingTime"]
    )


def test_okx_volume_spikes_and_drops() -> None:
    events = (VolumeSpike(1.0, 2.0, OKX, "BTCUSDT", 10.0, 1.0), ConnectionDrop(3.5, 1.0, OKX))
    frames = run(events, 5.0)
    model = MarketModel(["BTCUSDT"], 1, DEFAULT_START_MS, Scenario("t", "", 5.0, events))
    drops = [o for o in model.advance(at(5)) if isinstance(o, Disconnect)]
    assert drops == [Disconnect(at(3.5), OKX, at(4.5))]
    trades = [f.ts for f in frames if f.channel.startswith("trades:")]
    calm = [t for t in trades if t < at(1)]
    spike = [t for t in trades if at(1) <= t < at(3)]
    assert len(spike) / 2 > 4 * max(1, len(calm))
    assert not [f for f in frames if at(3.5) <= f.ts < at(4.5)]


def test_a_spread_blowout_on_okx_widens_its_book_only() -> None:
    scenario = Scenario("t", "", 6.0, (SpreadBlowout(2.0, 3.0, OKX, "BTCUSDT", spread_bps=5.0),))
    records = list(generate_records(scenario, symbols=("BTCUSDT",)))
    for exchange, wide in ((OKX, True), (BINANCE, False), (BYBIT, False)):
        spreads = [
            (top[2] - top[0]) / top[0] * 1e4
            for ts, top in tops(records, exchange, "BTCUSDT")
            if at(2.5) <= ts < at(5)
        ]
        assert spreads and (min(spreads) >= 5.0 if wide else max(spreads) < 0.1), exchange
