"""The watched market changes while running: a new listing joins the pipeline, a delisted symbol
leaves it cleanly (its open opportunity closed as delisted, its frames ignored from then on)."""

from __future__ import annotations

from detector.analyzer import CloseReason, TrackedOpportunity
from detector.book import Need
from detector.config import DetectorConfig
from detector.models import Exchange, Source
from detector.pipeline import Pipeline
from detector.recording import Record
from detector.signals import Signal, SignalType
from detector.simulator import wire
from detector.symbols import Listing

VENUES = (Exchange.BINANCE, Exchange.BYBIT)


def levels(bid: float, ask: float) -> tuple[list[list[str]], list[list[str]]]:
    return [[f"{bid}", "50"]], [[f"{ask}", "50"]]


def binance_book(symbol: str, ts: int, bid: float, ask: float) -> list[Record]:
    """A diff buffered, then the snapshot it continues: a synced Binance book."""
    diff = wire.binance_depth(symbol, ts, ts, 1, 10, 0, *levels(bid, ask))
    body = wire.binance_rest_depth(5, ts, ts, *levels(bid, ask))
    return [
        Record(ts, Exchange.BINANCE, Source.WS, "/public/stream", diff),
        Record(ts, Exchange.BINANCE, Source.REST, wire.binance_depth_path(symbol), body),
    ]


def bybit_book(symbol: str, ts: int, bid: float, ask: float) -> Record:
    frame = wire.bybit_orderbook(symbol, "snapshot", ts, *levels(bid, ask), 100, 100, ts)
    return Record(ts, Exchange.BYBIT, Source.WS, "/v5/public/linear", frame)


def window(symbol: str, ts: int, bybit_factor: float = 1.0) -> list[Record]:
    """Binance asks 100, Bybit bids 101 (in Binance's unit): about 0.9 % after fees."""
    return [
        *binance_book(symbol, ts, 99.9, 100.0),
        bybit_book(symbol, ts + 10, 101.0 * bybit_factor, 101.1 * bybit_factor),
    ]


def feed(pipeline: Pipeline, records: list[Record]) -> list[Signal]:
    return [signal for record in records for signal in pipeline.feed(record)]


def arbitrage(signals: list[Signal]) -> list[Signal]:
    return [s for s in signals if s.type is SignalType.ARBITRAGE]


def test_a_new_listing_is_ignored_until_added_then_signals_in_its_unit() -> None:
    pipeline = Pipeline(DetectorConfig(symbols=("BTCUSDT",), exchanges=VENUES))
    assert arbitrage(feed(pipeline, window("SATSUSDT", 1_000, bybit_factor=10.0))) == []
    assert pipeline.symbols.canonical(Exchange.BYBIT, "SATSUSDT") is None

    # Bybit lists it per 10 coins: its prices are divided by 10 to compare.
    pipeline.add_symbol("SATSUSDT", VENUES, {Exchange.BYBIT: Listing("SATSUSDT", factor=10.0)})
    assert pipeline.symbols.symbols == ("BTCUSDT", "SATSUSDT")
    assert [b.exchange for b in pipeline.books("SATSUSDT")] == list(VENUES)
    signals = arbitrage(feed(pipeline, window("SATSUSDT", 2_000, bybit_factor=10.0)))
    assert len(signals) == 1
    found = signals[0].details
    assert (found["buy_price"], found["sell_price"]) == (100.0, 101.0)  # Bybit's 1010 / 10
    assert found["max_volume"] == 50.0  # Binance's 50; Bybit's 50 lots are 500 of the unit


def test_a_delisted_symbol_closes_its_opportunity_and_is_ignored_after() -> None:
    pipeline = Pipeline(DetectorConfig(symbols=("BTCUSDT", "XUSDT"), exchanges=VENUES))
    closed: list[TrackedOpportunity] = []
    pipeline.on_opportunity_closed = closed.append
    assert len(arbitrage(feed(pipeline, window("XUSDT", 1_000)))) == 1
    assert len(pipeline.analyzer.open_opportunities()) == 1

    pipeline.remove_symbol("XUSDT")
    assert [t.close_reason for t in closed] == [CloseReason.DELISTED]
    assert pipeline.analyzer.open_opportunities() == []
    assert pipeline.analyzer.stats("XUSDT").closed == 1  # its history stays in /stats
    assert pipeline.symbols.symbols == ("BTCUSDT",)
    assert pipeline.books("XUSDT") == ()
    assert all(need.symbol != "XUSDT" for need in pipeline.needs())
    # Its streams may still deliver until the connection drops them: nothing comes of them.
    assert feed(pipeline, window("XUSDT", 5_000)) == []
    assert pipeline.remove_symbol("XUSDT") == []  # twice is harmless


def test_a_relisted_symbol_starts_over_awaiting_its_snapshot() -> None:
    pipeline = Pipeline(DetectorConfig(symbols=("XUSDT",), exchanges=VENUES))
    feed(pipeline, window("XUSDT", 1_000))
    assert all(book.usable for book in pipeline.books("XUSDT"))
    pipeline.remove_symbol("XUSDT")
    pipeline.add_symbol("XUSDT", VENUES, {})
    books = pipeline.books("XUSDT")
    assert [b.usable for b in books] == [False, False]
    assert books[0].need is Need.SNAPSHOT
    # Past the quiet time after its last alert, the same window is news again.
    assert len(arbitrage(feed(pipeline, window("XUSDT", 60_000)))) == 1
