"""Identity on prices: two coins behind one name are quarantined on first sync, never signalled."""

from __future__ import annotations

import dataclasses

import pytest

from detector.config import DetectorConfig
from detector.engine import Detector
from detector.errors import ConfigError
from detector.models import Exchange, Source
from detector.pipeline import HOLD_FOR_THIRD_MS, Pipeline
from detector.recording import Record
from detector.signals import Signal, SignalType
from detector.simulator import wire, wire_okx
from detector.venues.instruments import Instrument

SYMBOL = "XUSDT"
OKX_SWAP = "X-USDT-SWAP"
THREE = (Exchange.BINANCE, Exchange.BYBIT, Exchange.OKX)


def levels(bid: float, ask: float) -> tuple[list[list[str]], list[list[str]]]:
    return [[f"{bid}", "50"]], [[f"{ask}", "50"]]


def binance_book(ts: int, bid: float, ask: float) -> list[Record]:
    """A diff buffered, then the snapshot it continues: a synced Binance book."""
    diff = wire.binance_depth(SYMBOL, ts, ts, 1, 10, 0, *levels(bid, ask))
    body = wire.binance_rest_depth(5, ts, ts, *levels(bid, ask))
    return [
        Record(ts, Exchange.BINANCE, Source.WS, "/public/stream", diff),
        Record(ts, Exchange.BINANCE, Source.REST, wire.binance_depth_path(SYMBOL), body),
    ]


def bybit_book(ts: int, bid: float, ask: float, update_id: int = 100) -> Record:
    kind = "snapshot" if update_id == 100 else "delta"
    frame = wire.bybit_orderbook(SYMBOL, kind, ts, *levels(bid, ask), update_id, update_id, ts)
    return Record(ts, Exchange.BYBIT, Source.WS, "/v5/public/linear", frame)


def okx_book(ts: int, bid: float, ask: float) -> Record:
    """An OKX ``books`` snapshot: a synced OKX book (its checksum is OKX's)."""
    bids, asks = levels(bid, ask)
    check = wire_okx.checksum(bids, asks)
    frame = wire_okx.books(OKX_SWAP, "snapshot", asks, bids, ts, check, -1, 100)
    return Record(ts, Exchange.OKX, Source.WS, wire_okx.OKX_PUBLIC, frame)


def binance_move(ts: int, bid: float, ask: float) -> Record:
    """The Binance diff after binance_book's: its top moves from 100/100.1 to bid/ask."""
    bids = [["100.0", "0"], [f"{bid}", "50"]]
    asks = [["100.1", "0"], [f"{ask}", "50"]]
    diff = wire.binance_depth(SYMBOL, ts, ts, 11, 11, 10, bids, asks)
    return Record(ts, Exchange.BINANCE, Source.WS, "/public/stream", diff)


def binance_funding(ts: int, rate: str) -> Record:
    frame = wire.binance_mark_price(SYMBOL, ts, "100", "100", "100", rate, ts + 3_600_000)
    return Record(ts, Exchange.BINANCE, Source.WS, "/public/stream", frame)


def bybit_funding(ts: int, rate: str) -> Record:
    fields = {
        "symbol": SYMBOL,
        "fundingRate": rate,
        "nextFundingTime": str(ts + 3_600_000),
        "markPrice": "100",
        "indexPrice": "100",
        "bid1Price": "100",
        "bid1Size": "1",
        "ask1Price": "101",
        "ask1Size": "1",
    }
    frame = wire.bybit_tickers(SYMBOL, "snapshot", fields, ts, ts)
    return Record(ts, Exchange.BYBIT, Source.WS, "/v5/public/linear", frame)


def run(records: list[Record], **config: float) -> tuple[Pipeline, list[Signal]]:
    pipeline = Pipeline(DetectorConfig(symbols=(SYMBOL,), **config))  # type: ignore[arg-type]
    signals = [s for record in records for s in pipeline.feed(record)]
    return pipeline, signals


def test_two_coins_behind_one_name_are_quarantined_and_never_signal() -> None:
    # Bybit's XUSDT is another coin at 10x the price: a 900 % "arbitrage" if compared.
    records = [
        binance_funding(1_000, "0.0001"),
        bybit_funding(1_000, "0.0030"),  # 0.29 points apart: a divergence if compared
        *binance_book(1_100, 100.0, 100.1),
        bybit_book(1_200, 1000.0, 1001.0),
        bybit_book(1_300, 1000.5, 1001.5, update_id=101),
        binance_funding(1_400, "0.0001"),
    ]
    pipeline, signals = run(records)
    assert signals == []
    assert set(pipeline.quarantined) == {(Exchange.BINANCE, SYMBOL), (Exchange.BYBIT, SYMBOL)}
    why = pipeline.quarantined[(Exchange.BYBIT, SYMBOL)]
    assert why == "mid 1000.5 against Binance 100.05: not the same coin"
    assert pipeline.books(SYMBOL) == ()
    assert pipeline.needs() == []  # no snapshot or resubscription is asked for them any more
    stats = pipeline.stats.to_dict()
    assert stats["quarantined"] == {
        "binance:XUSDT": "mid 100.05 against Bybit 1000.5: not the same coin",
        "bybit:XUSDT": why,
    }
    assert stats["quarantined_events"] == 2  # Bybit's delta and Binance's last funding rate


def test_the_same_coin_within_the_ratio_is_verified_and_its_funding_released() -> None:
    records = [
        binance_funding(1_000, "0.0001"),
        bybit_funding(1_000, "0.0030"),
        *binance_book(1_100, 100.0, 100.1),
        bybit_book(1_200, 108.0, 108.1),  # 8 % apart: within the 10 % default
    ]
    pipeline, signals = run(records)
    assert pipeline.quarantined == {}
    assert "quarantined" not in pipeline.stats.to_dict()
    assert [s.type for s in signals][:1] == [SignalType.FUNDING_RATE_DIVERGENCE]
    assert signals[0].timestamp == 1_200  # held until both books agreed, then compared
    assert any(s.type is SignalType.ARBITRAGE for s in signals)  # 8 % is a real window here


@pytest.mark.parametrize(("ratio", "quarantined"), [(5.0, True), (0.0, False)])
def test_the_ratio_is_a_setting_and_0_turns_the_check_off(ratio: float, quarantined: bool) -> None:
    records = [*binance_book(1_100, 100.0, 100.1), bybit_book(1_200, 108.0, 108.1)]
    pipeline, _ = run(records, max_price_ratio_pct=ratio)
    assert bool(pipeline.quarantined) is quarantined


def test_a_book_that_resyncs_later_is_not_checked_again() -> None:
    records = [
        *binance_book(1_100, 100.0, 100.1),
        bybit_book(1_200, 100.0, 100.1),
        bybit_book(1_300, 100.0, 100.1, update_id=103),  # a gap: the Bybit book breaks
        bybit_book(1_400, 130.0, 130.1),  # its new snapshot, after a 30 % move (a real crash)
    ]
    pipeline, _ = run(records)
    assert pipeline.quarantined == {}
    assert [b.exchange for b in pipeline.books(SYMBOL)] == [Exchange.BINANCE, Exchange.BYBIT]


def test_the_limit_is_validated() -> None:
    with pytest.raises(ConfigError, match="max_price_ratio_pct must be >= 0, got -1"):
        dataclasses.replace(DetectorConfig(), max_price_ratio_pct=-1.0)


async def test_the_detectors_health_reports_the_quarantine() -> None:
    detector = Detector(DetectorConfig(symbols=(SYMBOL,)), validate_symbols=False)
    for record in [*binance_book(1_100, 100.0, 100.1), bybit_book(1_200, 1000.0, 1001.0)]:
        detector.pipeline.feed(record)
    health = detector.health()
    assert health.quarantined == ["binance XUSDT", "bybit XUSDT"]
    assert "Bybit XUSDT quarantined: mid 1000.5 against Binance 100.05: not the same coin" in (
        health.symbol_problems
    )
    assert health.books == []  # no book of theirs is counted as watched
    await detector.stop()


def learn_okx_swap(pipeline: Pipeline) -> Pipeline:
    """Teach the OKX parser the swap's contract size (1 coin), as its instrument list would."""
    okx = Instrument(Exchange.OKX, OKX_SWAP, "X", "USDT", 0.1, 1.0, True, "live", "linear")
    pipeline.parsers[Exchange.OKX].learn_instruments([okx])  # type: ignore[attr-defined]
    return pipeline


def three_venues() -> Pipeline:
    return learn_okx_swap(Pipeline(DetectorConfig(symbols=(SYMBOL,), exchanges=THREE)))


def feed(pipeline: Pipeline, *records: Record) -> list[Signal]:
    return [s for record in records for s in pipeline.feed(record)]


def test_with_a_third_venue_syncing_only_the_odd_coin_is_quarantined() -> None:
    # Bybit and OKX sync first (WebSocket snapshots) and disagree; Binance (REST) tells.
    pipeline = three_venues()
    early = feed(pipeline, bybit_book(1_000, 1000.0, 1001.0), okx_book(1_100, 100.0, 100.1))
    early += feed(pipeline, bybit_book(1_200, 1000.5, 1001.5, update_id=101))
    assert early == []  # held: not compared, not signalled
    assert pipeline.quarantined == {}
    signals = feed(pipeline, *binance_book(2_000, 100.0, 100.1))
    assert set(pipeline.quarantined) == {(Exchange.BYBIT, SYMBOL)}
    assert [b.exchange for b in pipeline.books(SYMBOL)] == [Exchange.BINANCE, Exchange.OKX]
    assert signals == []
    # The genuine OKX book is watched: the two same-coin books make a real window.
    signals = feed(pipeline, binance_move(2_500, 102.0, 102.1))
    assert [s.type for s in signals if s.type is SignalType.ARBITRAGE] == [SignalType.ARBITRAGE]


def test_without_the_third_venue_the_hold_ends_and_both_are_quarantined() -> None:
    pipeline = three_venues()
    feed(pipeline, bybit_book(1_000, 1000.0, 1001.0), okx_book(1_100, 100.0, 100.1))
    late = 1_100 + HOLD_FOR_THIRD_MS  # the hold began when the second book synced
    # Both feeds stay alive (a fresh snapshot each) while Binance never syncs.
    signals = feed(pipeline, bybit_book(late - 2, 1000.5, 1001.5, update_id=101))
    signals += feed(pipeline, okx_book(late - 1, 100.0, 100.1))
    assert pipeline.quarantined == {} and signals == []  # still waiting
    signals = feed(pipeline, okx_book(late, 100.0, 100.1))
    assert set(pipeline.quarantined) == {(Exchange.BYBIT, SYMBOL), (Exchange.OKX, SYMBOL)}
    assert signals == []


async def test_the_detectors_health_names_the_held_books() -> None:
    detector = Detector(DetectorConfig(symbols=(SYMBOL,), exchanges=THREE), validate_symbols=False)
    learn_okx_swap(detector.pipeline)
    for record in [bybit_book(1_000, 1000.0, 1001.0), okx_book(1_100, 100.0, 100.1)]:
        detector.pipeline.feed(record)
    health = detector.health()
    assert health.quarantined == []
    held = "held: its price disagrees with another venue's; unused until a third venue's book"
    assert [p.split(" held: ")[0] for p in health.symbol_problems if held in p] == [
        "Bybit XUSDT",
        "OKX XUSDT",
    ]
    await detector.stop()
