"""The whole pipeline: recordings in, signals out; health rules that keep signals honest."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

import orjson
import pytest

from detector.analyzer import TrackedOpportunity
from detector.config import DetectorConfig
from detector.models import Exchange, Need, Source
from detector.pipeline import Pipeline
from detector.recording import Record, read_recording
from detector.signals import Signal, SignalType
from detector.simulator import wire
from detector.simulator.session import generate_records
from tests.conftest import fixture_path, load_json

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "sample.jsonl.gz"
CONFIG = DetectorConfig(symbols=("BTCUSDT", "ETHUSDT"))
BOOK_SIGNALS = {SignalType.ARBITRAGE, SignalType.SPREAD_ANOMALY, SignalType.MOMENTUM_BREAKOUT}


@cache
def sample_records() -> tuple[Record, ...]:
    records = []
    for item in read_recording(SAMPLE):
        assert isinstance(item, Record), item
        records.append(item)
    return tuple(records)


def run(
    records: Iterable[Record], config: DetectorConfig = CONFIG
) -> tuple[Pipeline, list[Signal]]:
    pipeline = Pipeline(config)
    signals = [signal for record in records for signal in pipeline.feed(record)]
    return pipeline, signals


def test_sample_shows_every_signal_type_a_gap_with_resync_and_a_stale_feed() -> None:
    pipeline, signals = run(sample_records())
    assert {s.type for s in signals} == set(SignalType)
    stats = pipeline.stats
    assert sum(stats.gaps.values()) >= 1
    assert stats.resyncs == stats.gaps  # every broken book came back
    assert sum(stats.stale.values()) >= 1
    assert not stats.frame_errors
    assert not stats.desyncs and stats.ticker_checks > 1000  # bookTicker always agreed
    assert pipeline.needs() == []  # at the end every book is synced


def test_replay_is_deterministic() -> None:
    first = [orjson.dumps(s.to_dict()) for s in run(sample_records())[1]]
    second = [orjson.dumps(s.to_dict()) for s in run(sample_records())[1]]
    assert first == second
    assert len(first) >= 5


def test_no_book_signal_comes_from_an_unsynced_or_stale_book() -> None:
    pipeline = Pipeline(CONFIG)
    checked = 0
    unhealthy_seen = 0
    for record in sample_records():
        for signal in pipeline.feed(record):
            if signal.type not in BOOK_SIGNALS:
                continue
            checked += 1
            if signal.type is SignalType.ARBITRAGE:
                exchanges = [Exchange.BINANCE, Exchange.BYBIT]
            else:
                exchanges = [Exchange(signal.details["exchange"])]
            for exchange in exchanges:
                binance, bybit = pipeline.books(signal.symbol)
                book = binance if exchange is Exchange.BINANCE else bybit
                age = book.age_ms(pipeline.now_ms)
                assert book.usable, (signal, exchange)
                assert age is not None and age <= CONFIG.stale_after_ms, (signal, exchange)
        unhealthy_seen += sum(
            not pipeline.is_healthy(ex, sym)
            for sym in CONFIG.symbols
            for ex in (Exchange.BINANCE, Exchange.BYBIT)
        )
    assert checked >= 3
    assert unhealthy_seen > 0  # the sample does contain unhealthy stretches


def test_opportunities_close_when_a_feed_goes_stale() -> None:
    pipeline, _ = run(sample_records())
    reasons = pipeline.analyzer.stats().by_close_reason
    # The sample's stale Bybit feed interrupts an open arbitrage window.
    assert reasons.get("stale", 0) >= 1, reasons


def test_a_malformed_frame_is_skipped_and_loses_nothing() -> None:
    records = list(sample_records())
    clean_signals = [s.to_dict() for s in run(records)[1]]
    bad = Record(
        records[500].ts,
        Exchange.BINANCE,
        Source.WS,
        "/public/stream",
        {"stream": "btcusdt@depth@100ms", "data": {"e": "depthUpdate", "s": "BTCUSDT"}},
    )
    truncated = Record(records[900].ts, Exchange.BYBIT, Source.WS, "/v5/public/linear", '{"topic')
    dirty = [*records[:500], bad, *records[500:900], truncated, *records[900:]]
    pipeline, signals = run(dirty)
    assert pipeline.stats.frame_errors == {"binance": 1, "bybit": 1}
    assert [s.to_dict() for s in signals] == clean_signals


def test_unmonitored_symbols_are_counted_not_applied() -> None:
    pipeline, signals = run(sample_records()[:3000], DetectorConfig(symbols=("BTCUSDT",)))
    assert pipeline.stats.unmonitored > 0
    assert all(s.symbol == "BTCUSDT" for s in signals)


def test_clock_advance_without_frames_marks_books_stale_and_closes() -> None:
    records = sample_records()
    pipeline = Pipeline(CONFIG)
    for record in records[:4000]:
        pipeline.feed(record)
    assert pipeline.is_healthy(Exchange.BINANCE, "BTCUSDT")
    pipeline.advance(pipeline.now_ms + CONFIG.stale_after_ms + 1)
    assert not pipeline.is_healthy(Exchange.BINANCE, "BTCUSDT")
    assert pipeline.stats.stale["binance:BTCUSDT"] == 1
    # The clock never runs backwards: an older record is still processed, the clock stays.
    before = pipeline.now_ms
    pipeline.feed(records[4000])
    assert pipeline.now_ms == before
    assert pipeline.stats.clock_regressions == 1


# --- real Binance frames: sync, needs, and the bookTicker cross-check ------------------------


def _wrapped_frames(name: str) -> list[tuple[float, Record]]:
    out = []
    for line in fixture_path(name).read_bytes().splitlines():
        item = orjson.loads(line)
        ts = round(item["recv_ts"] * 1000)
        record = Record(ts, Exchange.BINANCE, Source.WS, "/public/stream", item["raw"])
        out.append((item["recv_ts"], record))
    return out


def sushi_records(with_tickers: bool = False) -> list[Record]:
    """The 255 real SUSHIUSDT diff frames (and the session's 305 bookTicker frames, merged in
    arrival order), with the REST snapshot arriving after the third diff."""
    timed = _wrapped_frames("binance_usdm_SUSHIUSDT_depth100ms_replay_2021-07-22.jsonl")
    if with_tickers:
        timed += _wrapped_frames("binance_usdm_SUSHIUSDT_bookTicker_replay_2021-07-22.jsonl")
        timed.sort(key=lambda pair: pair[0])
    records = [record for _, record in timed]
    third_diff = [r for r in records if "@depth" in r.data][2]
    snapshot = Record(
        third_diff.ts,
        Exchange.BINANCE,
        Source.REST,
        "/fapi/v1/depth?symbol=SUSHIUSDT&limit=1000",
        load_json("binance_usdm_rest_depth_SUSHIUSDT_limit1000_2021-07-22.json"),
    )
    # Recorded WS payloads are the frames as received: decode the text as a live client would.
    decoded = [
        Record(r.ts, r.exchange, r.source, r.endpoint, orjson.loads(r.data)) for r in records
    ]
    at = records.index(third_diff) + 1
    return [*decoded[:at], snapshot, *decoded[at:]]


SUSHI = DetectorConfig(symbols=("SUSHIUSDT",))


def test_real_binance_frames_sync_and_bybit_side_reports_its_need() -> None:
    pipeline, signals = run(sushi_records(), SUSHI)
    binance, _bybit = pipeline.books("SUSHIUSDT")
    assert binance.synced and binance.dropped == 3 and binance.gaps == 0
    assert signals == []  # one exchange alone can never make an arbitrage
    needs = pipeline.needs()
    assert [(n.exchange, n.need) for n in needs] == [(Exchange.BYBIT, Need.RESUBSCRIBE)]


def test_real_book_tickers_agree_with_the_rebuilt_book() -> None:
    pipeline, _ = run(sushi_records(with_tickers=True), SUSHI)
    # 12 of the session's bookTicker frames carry the id of an applied depth event (most of
    # them arrive before that event): each one is compared, and each one agrees.
    assert pipeline.stats.ticker_checks == 12
    assert not pipeline.stats.desyncs
    binance, _ = pipeline.books("SUSHIUSDT")
    assert binance.synced and binance.gaps == 0


def test_a_book_ticker_that_contradicts_the_book_discards_it() -> None:
    records = sushi_records()
    pipeline, _ = run(records, SUSHI)
    binance, _ = pipeline.books("SUSHIUSDT")
    bid, ask = binance.levels.best_bid(), binance.levels.best_ask()
    assert bid is not None and ask is not None

    def ticker(bid_price: float) -> Record:
        return Record(
            records[-1].ts,
            Exchange.BINANCE,
            Source.WS,
            "/public/stream",
            {
                "stream": "sushiusdt@bookTicker",
                "data": {
                    "e": "bookTicker",
                    "u": binance.last_update_id,
                    "s": "SUSHIUSDT",
                    "b": f"{bid_price:.4f}",
                    "B": f"{bid[1]:g}",
                    "a": f"{ask[0]:.4f}",
                    "A": f"{ask[1]:g}",
                    "T": 1626992771000,
                    "E": 1626992771001,
                },
            },
        )

    pipeline.feed(ticker(bid[0]))  # agrees: nothing happens
    assert binance.synced and not pipeline.stats.desyncs
    pipeline.feed(ticker(bid[0] - 0.001))  # same id, another top: the book is wrong
    assert not binance.synced
    assert pipeline.stats.desyncs == {"binance:SUSHIUSDT": 1}
    first_need = pipeline.needs()[0]
    assert (first_need.exchange, first_need.need) == (Exchange.BINANCE, Need.SNAPSHOT)


@pytest.mark.parametrize("scenario", ["arbitrage"])
def test_scripted_arbitrage_window_is_found_with_its_prices(scenario: str) -> None:
    records = list(generate_records(scenario, seed=3, symbols=CONFIG.symbols))
    pipeline, signals = run(records)
    arbs = [s for s in signals if s.type is SignalType.ARBITRAGE]
    assert arbs, pipeline.stats.to_dict()
    for signal in arbs:
        d = signal.details
        assert d["net_profit_percentage"] >= CONFIG.min_profit_pct
        assert d["max_volume"] * d["buy_price"] >= CONFIG.min_notional_usd
        assert d["sell_price"] > d["buy_price"]


def test_a_book_ticker_arriving_before_its_depth_event_is_checked_when_it_lands() -> None:
    records = []
    for record in sushi_records(with_tickers=True):
        if isinstance(record.data, dict) and record.data.get("stream", "").endswith("bookTicker"):
            data = dict(record.data["data"], b=f"{float(record.data['data']['b']) - 0.001:.4f}")
            record = Record(record.ts, record.exchange, record.source, record.endpoint, {
                "stream": record.data["stream"], "data": data})  # fmt: skip
        records.append(record)
    pipeline, _ = run(records, SUSHI)
    assert pipeline.stats.desyncs == {"binance:SUSHIUSDT": 1}
    binance, _ = pipeline.books("SUSHIUSDT")
    assert binance.need is Need.SNAPSHOT  # discarded at the first contradiction, awaiting REST


def test_closed_opportunities_are_reported_with_their_final_figures() -> None:
    pipeline = Pipeline(CONFIG)
    closed: list[TrackedOpportunity] = []
    pipeline.on_opportunity_closed = closed.append
    for record in sample_records():
        pipeline.feed(record)
    assert len(closed) == pipeline.analyzer.stats().closed >= 2
    for tracked in closed:
        assert tracked.closed_ms is not None and tracked.close_reason is not None
        assert tracked.duration_ms == tracked.closed_ms - tracked.opened_ms > 0
        assert tracked.peak.net_profit_percentage >= CONFIG.min_profit_pct


# --- book needs: what the live feeds decide on -------------------------------------------------

LEVELS = ([["100.0", "1"]], [["101.0", "1"]])
BINANCE_WAITS = (Exchange.BINANCE, Need.SNAPSHOT, 0, False)
BYBIT_WAITS = (Exchange.BYBIT, Need.RESUBSCRIBE, 0, False)


def binance_diff(first: int, final: int, prev: int) -> Record:
    frame = wire.binance_depth("BTCUSDT", 1, 1, first, final, prev, *LEVELS)
    return Record(1, Exchange.BINANCE, Source.WS, "/public/stream", frame)


def binance_snapshot(last_update_id: int) -> Record:
    body = wire.binance_rest_depth(last_update_id, 1, 1, *LEVELS)
    return Record(1, Exchange.BINANCE, Source.REST, wire.binance_depth_path("BTCUSDT"), body)


def bybit_book(kind: str, update_id: int) -> Record:
    frame = wire.bybit_orderbook("BTCUSDT", kind, 1, *LEVELS, update_id, update_id, 1)
    return Record(1, Exchange.BYBIT, Source.WS, "/v5/public/linear", frame)


@pytest.mark.parametrize(
    ("records", "needs"),
    [
        pytest.param([], [BINANCE_WAITS, BYBIT_WAITS], id="nothing-yet"),
        pytest.param(
            [binance_diff(1, 2, 0), binance_diff(3, 4, 2)],
            [(Exchange.BINANCE, Need.SNAPSHOT, 2, False), BYBIT_WAITS],
            id="binance-buffering",
        ),
        pytest.param(
            [binance_diff(1, 10, 0), binance_snapshot(5)], [BYBIT_WAITS], id="binance-synced"
        ),
        pytest.param(
            [binance_diff(1, 10, 0), binance_snapshot(5), binance_diff(13, 14, 12)],
            [(Exchange.BINANCE, Need.SNAPSHOT, 1, True), BYBIT_WAITS],
            id="binance-gap",
        ),
        pytest.param(
            [binance_diff(10, 20, 9), binance_snapshot(5)],
            [(Exchange.BINANCE, Need.SNAPSHOT, 1, True), BYBIT_WAITS],
            id="binance-snapshot-older-than-the-buffer",
        ),
        pytest.param([bybit_book("snapshot", 100)], [BINANCE_WAITS], id="bybit-synced"),
        pytest.param(
            [bybit_book("snapshot", 100), bybit_book("delta", 101), bybit_book("delta", 103)],
            [BINANCE_WAITS, (Exchange.BYBIT, Need.RESUBSCRIBE, 0, True)],
            id="bybit-gap",
        ),
        pytest.param(
            [bybit_book("snapshot", 100), bybit_book("delta", 102)],
            [BINANCE_WAITS, (Exchange.BYBIT, Need.RESUBSCRIBE, 0, True)],
            id="bybit-gap-before-any-delta",
        ),
    ],
)
def test_needs_report_what_is_buffered_and_what_broke(
    records: list[Record], needs: list[tuple[Exchange, Need, int, bool]]
) -> None:
    pipeline, _ = run(records, DetectorConfig(symbols=("BTCUSDT",)))
    assert [(n.exchange, n.need, n.buffered, n.broken) for n in pipeline.needs()] == needs
