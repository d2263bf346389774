"""Order books: level operations, every sync rule of each venue, and a real Binance replay."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
import pytest

from detector.book import (
    ApplyResult,
    BinanceBook,
    BookState,
    BybitBook,
    OkxBook,
    OrderBook,
    SyncedBook,
    make_book,
)
from detector.models import (
    BookTicker,
    DepthDiff,
    DepthSnapshot,
    Exchange,
    Level,
    Need,
    Source,
)
from detector.venues.binance import BinanceParser
from detector.venues.bybit import BybitParser
from detector.venues.okx import INSTRUMENTS_ENDPOINT, OkxParser
from tests.conftest import load_json, load_jsonl

# -- OrderBook level operations ------------------------------------------------------------------


def _book(bids: list[Level], asks: list[Level]) -> OrderBook:
    levels = OrderBook()
    levels.replace(bids, asks)
    return levels


def test_empty_book() -> None:
    levels = OrderBook()
    assert (levels.best_bid(), levels.best_ask()) == (None, None)
    assert (levels.bid_count, levels.ask_count) == (0, 0)
    assert list(levels.iter_bids()) == list(levels.iter_asks()) == []
    assert not levels.is_crossed()


def test_replace_sorts_best_first_and_leaves_out_zero_sizes() -> None:
    levels = _book([(9.0, 1.0), (10.0, 2.0), (8.0, 0.0)], [(12.0, 1.0), (11.0, 3.0), (13.0, 0.0)])
    assert list(levels.iter_bids()) == [(10.0, 2.0), (9.0, 1.0)]
    assert list(levels.iter_asks()) == [(11.0, 3.0), (12.0, 1.0)]
    assert (levels.best_bid(), levels.best_ask()) == ((10.0, 2.0), (11.0, 3.0))
    assert (levels.bid_count, levels.ask_count) == (2, 2)


@pytest.mark.parametrize(
    ("bids", "asks", "expected_bids", "expected_asks"),
    [
        pytest.param([(9.5, 4.0)], [], [(10.0, 2.0), (9.5, 4.0), (9.0, 1.0)], None, id="insert"),
        pytest.param(
            [(10.5, 1.0)], [], [(10.5, 1.0), (10.0, 2.0), (9.0, 1.0)], None, id="new-best"
        ),
        pytest.param([(10.0, 7.0)], [], [(10.0, 7.0), (9.0, 1.0)], None, id="update"),
        pytest.param([(10.0, 0.0)], [], [(9.0, 1.0)], None, id="delete-best"),
        pytest.param([(8.0, 0.0)], [], [(10.0, 2.0), (9.0, 1.0)], None, id="delete-unknown"),
        pytest.param([], [(11.0, 0.0)], None, [(12.0, 1.0)], id="delete-best-ask"),
        pytest.param([], [(11.5, 5.0)], None, [(11.0, 3.0), (11.5, 5.0), (12.0, 1.0)], id="ask"),
        pytest.param(
            [(9.0, 0.0), (9.0, 3.0)], [], [(10.0, 2.0), (9.0, 3.0)], None, id="in-frame-order"
        ),
    ],
)
def test_update_levels(
    bids: list[Level],
    asks: list[Level],
    expected_bids: list[Level] | None,
    expected_asks: list[Level] | None,
) -> None:
    levels = _book([(9.0, 1.0), (10.0, 2.0)], [(12.0, 1.0), (11.0, 3.0)])
    levels.update(bids, asks)
    assert list(levels.iter_bids()) == (expected_bids or [(10.0, 2.0), (9.0, 1.0)])
    assert list(levels.iter_asks()) == (expected_asks or [(11.0, 3.0), (12.0, 1.0)])
    assert levels.bid_count == len(list(levels.iter_bids()))
    assert levels.ask_count == len(list(levels.iter_asks()))


def test_top_levels_and_clear() -> None:
    levels = _book(
        [(float(p), 1.0) for p in range(1, 11)], [(float(p), 1.0) for p in range(11, 21)]
    )
    assert [p for p, _ in levels.top_bids(3)] == [10.0, 9.0, 8.0]
    assert [p for p, _ in levels.top_asks(3)] == [11.0, 12.0, 13.0]
    assert len(levels.top_bids(100)) == 10
    levels.clear()
    assert (levels.best_bid(), levels.best_ask(), levels.bid_count) == (None, None, 0)


@pytest.mark.parametrize(
    ("bid", "ask", "crossed"),
    [(10.0, 11.0, False), (11.0, 11.0, True), (12.0, 11.0, True)],
)
def test_is_crossed(bid: float, ask: float, crossed: bool) -> None:
    assert _book([(bid, 1.0)], [(ask, 1.0)]).is_crossed() is crossed


def test_crossing_follows_every_change_of_either_top() -> None:
    levels = _book([(10.0, 1.0)], [(11.0, 1.0)])
    levels.update([(11.5, 1.0)], [])  # a bid above the ask
    assert levels.is_crossed()
    levels.update([], [(12.0, 1.0), (11.0, 0.0)])  # the ask it crossed is gone
    assert not levels.is_crossed()
    levels.update([(11.5, 0.0), (10.0, 0.0)], [])  # no bid left
    assert not levels.is_crossed()
    levels.update([(12.0, 2.0)], [])
    assert levels.is_crossed()
    levels.update([], [(12.0, 0.0)])  # no ask left
    assert not levels.is_crossed()
    levels.replace([(13.0, 1.0)], [(12.5, 1.0)])
    assert levels.is_crossed()
    levels.clear()
    assert not levels.is_crossed()


# -- sync rules, table-driven ----------------------------------------------------------------------

BID = [(100.0, 1.0)]
ASK = [(101.0, 1.0)]


def bn_diff(first: int, final: int, prev: int, bids: list[Level] = BID) -> DepthDiff:
    return DepthDiff(Exchange.BINANCE, "BTCUSDT", bids, [], first, final, prev, final, final)


def bn_rest(last: int, bids: list[Level] = BID, asks: list[Level] = ASK) -> DepthSnapshot:
    return DepthSnapshot(Exchange.BINANCE, "BTCUSDT", bids, asks, last, last, last, Source.REST)


def bn_partial(u: int, bids: list[Level] = BID, asks: list[Level] = ASK) -> DepthSnapshot:
    return DepthSnapshot(Exchange.BINANCE, "BTCUSDT", bids, asks, u, u, u, Source.WS)


def by_delta(u: int, bids: list[Level] = BID) -> DepthDiff:
    return DepthDiff(Exchange.BYBIT, "BTCUSDT", bids, [], u, u, None, u, u, 50)


def by_snap(u: int, source: Source = Source.WS) -> DepthSnapshot:
    return DepthSnapshot(Exchange.BYBIT, "BTCUSDT", BID, ASK, u, u, u, source, 50)


def ok_snap(seq: int, source: Source = Source.WS) -> DepthSnapshot:
    return DepthSnapshot(Exchange.OKX, "BTC-USDT-SWAP", BID, ASK, seq, seq, seq, source, 400)


def ok_diff(prev: int, seq: int, bids: list[Level] = BID, recv: int | None = None) -> DepthDiff:
    """An OKX update as the parser maps it: seqId → first and final id, prevSeqId → prev."""
    at = seq if recv is None else recv
    return DepthDiff(Exchange.OKX, "BTC-USDT-SWAP", bids, [], seq, seq, prev, at, at, 400)


def ok_keepalive(seq: int) -> DepthDiff:
    """No change for a while: empty sides, seqId == prevSeqId == the last seqId."""
    return ok_diff(seq, seq, [])


A, R, B, D, IG, G = (
    ApplyResult.APPLIED,
    ApplyResult.RESET,
    ApplyResult.BUFFERED,
    ApplyResult.DROPPED,
    ApplyResult.IGNORED,
    ApplyResult.GAP,
)


@dataclass(frozen=True)
class Case:
    """Events fed to a fresh book with the result each must give, then the book's end state."""

    exchange: Exchange
    steps: list[tuple[DepthSnapshot | DepthDiff, ApplyResult]]
    state: BookState
    need: Need
    last_update_id: int | None
    counters: dict[str, int] = field(default_factory=dict)  # attribute → value


CASES = {
    # Binance USDⓈ-M: buffer, snapshot, drop u < lastUpdateId, bridge U <= L <= u, then pu chain.
    "bn-buffer-until-snapshot": Case(
        Exchange.BINANCE,
        [(bn_diff(90, 95, 89), B), (bn_diff(96, 99, 95), B)],
        BookState.AWAITING_SNAPSHOT,
        Need.SNAPSHOT,
        None,
        {"buffered": 2, "applied": 0},
    ),
    "bn-drop-u-below-last-update-id": Case(
        Exchange.BINANCE,
        [(bn_diff(90, 95, 89), B), (bn_rest(100), R)],
        BookState.BRIDGING,
        Need.NOTHING,
        100,
        {"dropped": 1, "buffered": 0},
    ),
    "bn-bridge-u-spans-last-update-id": Case(
        Exchange.BINANCE,
        [(bn_diff(90, 95, 89), B), (bn_diff(96, 105, 95), B), (bn_rest(100), R)],
        BookState.SYNCED,
        Need.NOTHING,
        105,
        {"dropped": 1, "applied": 1},
    ),
    "bn-bridge-u-equals-last-update-id": Case(
        Exchange.BINANCE,
        [(bn_rest(100), R), (bn_diff(90, 100, 89), A)],
        BookState.SYNCED,
        Need.NOTHING,
        100,
    ),
    "bn-bridge-first-u-equals-last-update-id": Case(
        Exchange.BINANCE,
        [(bn_rest(100), R), (bn_diff(100, 104, 99), A), (bn_diff(105, 107, 104), A)],
        BookState.SYNCED,
        Need.NOTHING,
        107,
        {"applied": 2},
    ),
    "bn-snapshot-too-old": Case(
        Exchange.BINANCE,
        [(bn_diff(110, 120, 105), B), (bn_rest(100), R)],
        BookState.AWAITING_SNAPSHOT,
        Need.SNAPSHOT,
        None,
        {"gaps": 1, "buffered": 1, "applied": 0},  # the event that proved it is kept
    ),
    "bn-snapshot-too-old-live": Case(
        Exchange.BINANCE,
        [(bn_rest(100), R), (bn_diff(110, 120, 105), G)],
        BookState.AWAITING_SNAPSHOT,
        Need.SNAPSHOT,
        None,
        {"gaps": 1, "buffered": 1},
    ),
    "bn-too-old-then-newer-snapshot-resyncs": Case(
        Exchange.BINANCE,
        [
            (bn_diff(110, 120, 105), B),
            (bn_rest(100), R),
            (bn_diff(121, 125, 120), B),
            (bn_rest(115), R),
        ],
        BookState.SYNCED,
        Need.NOTHING,
        125,
        {"gaps": 1, "resyncs": 1, "applied": 2, "buffered": 0},
    ),
    "bn-pu-chain": Case(
        Exchange.BINANCE,
        [(bn_rest(100), R), (bn_diff(95, 105, 94), A), (bn_diff(106, 110, 105), A)],
        BookState.SYNCED,
        Need.NOTHING,
        110,
    ),
    "bn-ids-need-not-be-contiguous": Case(  # futures: U == prev u + 1 is the spot rule, not ours
        Exchange.BINANCE,
        [(bn_rest(100), R), (bn_diff(95, 105, 94), A), (bn_diff(180, 190, 105), A)],
        BookState.SYNCED,
        Need.NOTHING,
        190,
    ),
    "bn-pu-break": Case(
        Exchange.BINANCE,
        [(bn_rest(100), R), (bn_diff(95, 105, 94), A), (bn_diff(108, 110, 107), G)],
        BookState.AWAITING_SNAPSHOT,
        Need.SNAPSHOT,
        None,
        {"gaps": 1, "buffered": 1, "bid_count": 0},
    ),
    "bn-pu-break-then-resync": Case(
        Exchange.BINANCE,
        [
            (bn_rest(100), R),
            (bn_diff(95, 105, 94), A),
            (bn_diff(108, 110, 107), G),  # kept in the buffer
            (bn_diff(111, 115, 110), B),
            (bn_rest(109), R),  # 108 <= 109 <= 110: the kept event bridges the new snapshot
        ],
        BookState.SYNCED,
        Need.NOTHING,
        115,
        {"gaps": 1, "resyncs": 1, "applied": 3, "buffered": 0},
    ),
    "bn-duplicate-and-old-dropped": Case(
        Exchange.BINANCE,
        [
            (bn_rest(100), R),
            (bn_diff(95, 105, 94), A),
            (bn_diff(95, 105, 94), D),
            (bn_diff(96, 103, 95), D),
            (bn_diff(106, 108, 105), A),
        ],
        BookState.SYNCED,
        Need.NOTHING,
        108,
        {"dropped": 2, "gaps": 0},
    ),
    "bn-partial-depth-replaces": Case(
        Exchange.BINANCE,
        [(bn_partial(500), R), (bn_partial(520, [(99.0, 2.0)]), R)],
        BookState.SYNCED,
        Need.NOTHING,
        520,
        {"bid_count": 1},
    ),
    # Bybit v5: snapshot (or u == 1) resets, u grows by exactly 1, a jump needs a resubscribe.
    "by-delta-before-snapshot-ignored": Case(
        Exchange.BYBIT,
        [(by_delta(5), IG)],
        BookState.AWAITING_SNAPSHOT,
        Need.RESUBSCRIBE,
        None,
    ),
    "by-snapshot-resets": Case(
        Exchange.BYBIT,
        [(by_snap(10), R), (by_snap(20), R)],
        BookState.SYNCED,
        Need.NOTHING,
        20,
    ),
    "by-u-plus-1-applies": Case(
        Exchange.BYBIT,
        [(by_snap(10), R), (by_delta(11), A), (by_delta(12), A)],
        BookState.SYNCED,
        Need.NOTHING,
        12,
        {"applied": 2},
    ),
    "by-repeated-u-dropped": Case(
        Exchange.BYBIT,
        [(by_snap(10), R), (by_delta(11), A), (by_delta(11), D), (by_delta(10), D)],
        BookState.SYNCED,
        Need.NOTHING,
        11,
        {"dropped": 2},
    ),
    "by-jump-is-a-gap": Case(
        Exchange.BYBIT,
        [(by_snap(10), R), (by_delta(11), A), (by_delta(13), G), (by_delta(14), IG)],
        BookState.AWAITING_SNAPSHOT,
        Need.RESUBSCRIBE,
        None,
        {"gaps": 1, "bid_count": 0},
    ),
    "by-gap-then-snapshot-resyncs": Case(
        Exchange.BYBIT,
        [(by_snap(10), R), (by_delta(13), G), (by_snap(40), R), (by_delta(41), A)],
        BookState.SYNCED,
        Need.NOTHING,
        41,
        {"gaps": 1, "resyncs": 1},
    ),
    "by-u-1-restart-resets": Case(
        Exchange.BYBIT,
        [(by_snap(500), R), (by_delta(501), A), (by_snap(1), R), (by_delta(2), A)],
        BookState.SYNCED,
        Need.NOTHING,
        2,
    ),
    "by-rest-snapshot-ignored": Case(
        Exchange.BYBIT,
        [(by_snap(10, Source.REST), IG), (by_delta(11), IG)],
        BookState.AWAITING_SNAPSHOT,
        Need.RESUBSCRIBE,
        None,
    ),
    "by-rest-snapshot-leaves-synced-book": Case(
        Exchange.BYBIT,
        [(by_snap(10), R), (by_snap(999, Source.REST), IG), (by_delta(11), A)],
        BookState.SYNCED,
        Need.NOTHING,
        11,
    ),
    # OKX books: snapshot (prevSeqId -1) replaces; each prevSeqId is the previous seqId; a
    # keepalive repeats the last seqId; after maintenance seqId may fall below prevSeqId.
    "okx-update-before-snapshot-ignored": Case(
        Exchange.OKX,
        [(ok_diff(10, 15), IG)],
        BookState.AWAITING_SNAPSHOT,
        Need.RESUBSCRIBE,
        None,
    ),
    "okx-next-update-chains": Case(
        Exchange.OKX,
        [(ok_snap(10), R), (ok_diff(10, 15), A), (ok_diff(15, 22), A)],
        BookState.SYNCED,
        Need.NOTHING,
        22,
        {"applied": 2},
    ),
    "okx-docs-example": Case(  # docs-v5 "Sequence ID" example, step by step
        Exchange.OKX,
        [
            (ok_snap(10), R),  # snapshot: prevSeqId = -1, seqId = 10
            (ok_diff(10, 15), A),  # normal update
            (ok_keepalive(15), A),  # no update: prevSeqId = 15, seqId = 15
            (ok_diff(15, 3), A),  # sequence reset: prevSeqId = 15, seqId = 3
            (ok_diff(3, 5), A),  # normal update
        ],
        BookState.SYNCED,
        Need.NOTHING,
        5,
        {"applied": 3, "keepalives": 1, "resets": 1, "gaps": 0},
    ),
    "okx-gap": Case(
        Exchange.OKX,
        [(ok_snap(10), R), (ok_diff(10, 15), A), (ok_diff(16, 20), G), (ok_diff(20, 25), IG)],
        BookState.AWAITING_SNAPSHOT,
        Need.RESUBSCRIBE,
        None,
        {"gaps": 1, "bid_count": 0},
    ),
    "okx-gap-then-snapshot-resyncs": Case(
        Exchange.OKX,
        [(ok_snap(10), R), (ok_diff(12, 20), G), (ok_snap(40), R), (ok_diff(40, 41), A)],
        BookState.SYNCED,
        Need.NOTHING,
        41,
        {"gaps": 1, "resyncs": 1},
    ),
    "okx-keepalive-of-another-id-is-a-gap": Case(
        Exchange.OKX,
        [(ok_snap(10), R), (ok_keepalive(9), G)],
        BookState.AWAITING_SNAPSHOT,
        Need.RESUBSCRIBE,
        None,
        {"gaps": 1, "keepalives": 0},
    ),
    "okx-repeated-frame-is-a-gap": Case(  # ids are compared by identity, not by size
        Exchange.OKX,
        [(ok_snap(10), R), (ok_diff(10, 15), A), (ok_diff(10, 15), G)],
        BookState.AWAITING_SNAPSHOT,
        Need.RESUBSCRIBE,
        None,
        {"gaps": 1},
    ),
    "okx-after-a-reset-the-old-chain-is-a-gap": Case(
        Exchange.OKX,
        [(ok_snap(10), R), (ok_diff(10, 3), A), (ok_diff(10, 12), G)],
        BookState.AWAITING_SNAPSHOT,
        Need.RESUBSCRIBE,
        None,
        {"gaps": 1, "resets": 1},
    ),
    "okx-snapshot-mid-stream-replaces": Case(
        Exchange.OKX,
        [(ok_snap(10), R), (ok_diff(10, 15), A), (ok_snap(7), R), (ok_diff(7, 8), A)],
        BookState.SYNCED,
        Need.NOTHING,
        8,
    ),
    "okx-rest-snapshot-ignored": Case(
        Exchange.OKX,
        [(ok_snap(10, Source.REST), IG), (ok_diff(10, 11), IG)],
        BookState.AWAITING_SNAPSHOT,
        Need.RESUBSCRIBE,
        None,
    ),
}


def _counter(book: SyncedBook, name: str) -> int:
    if name == "bid_count":
        return book.levels.bid_count
    value = getattr(book, name)
    assert isinstance(value, int)
    return value


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_sync_rules(case: Case) -> None:
    book = make_book(case.exchange, "BTCUSDT")
    assert book.exchange is case.exchange
    for i, (event, expected) in enumerate(case.steps):
        if isinstance(event, DepthSnapshot):
            result = book.apply_snapshot(event)
        else:
            result = book.apply_diff(event)
        assert result is expected, f"step {i}: {event}"
    assert (book.state, book.need, book.last_update_id) == (
        case.state,
        case.need,
        case.last_update_id,
    )
    for name, value in case.counters.items():
        assert _counter(book, name) == value, name
    assert book.synced is (case.state is BookState.SYNCED)


def test_binance_gap_records_expected_and_got() -> None:
    book = BinanceBook("BTCUSDT")
    book.apply_snapshot(bn_rest(100))
    book.apply_diff(bn_diff(95, 105, 94))
    assert book.apply_diff(bn_diff(108, 110, 107)) is G
    assert book.last_gap is not None
    assert (book.last_gap.expected, book.last_gap.got) == (105, 107)


def test_bybit_gap_records_expected_and_got() -> None:
    book = BybitBook("BTCUSDT")
    book.apply_snapshot(by_snap(10))
    assert book.apply_diff(by_delta(13)) is G
    assert book.last_gap is not None
    assert (book.last_gap.expected, book.last_gap.got) == (11, 13)


@pytest.mark.parametrize(
    ("exchange", "sync", "after", "need"),
    [
        (Exchange.BINANCE, bn_rest(100), bn_diff(99, 102, 98), Need.SNAPSHOT),
        (Exchange.BYBIT, by_snap(100), by_delta(101), Need.RESUBSCRIBE),
        (Exchange.OKX, ok_snap(100), ok_diff(100, 101), Need.RESUBSCRIBE),
    ],
)
def test_invalidate_discards_until_the_next_snapshot(
    exchange: Exchange,
    sync: DepthSnapshot,
    after: DepthDiff,
    need: Need,
) -> None:
    book = make_book(exchange, "BTCUSDT")
    book.apply_snapshot(sync)
    book.invalidate()  # an outside check (bookTicker) proved the book wrong
    assert (book.state, book.need, book.last_update_id) == (BookState.AWAITING_SNAPSHOT, need, None)
    assert book.levels.bid_count == 0
    assert book.apply_diff(after) in (B, IG)
    assert book.resyncs == 0
    book.apply_snapshot(sync)
    assert (book.resyncs, book.need, book.gaps) == (1, Need.NOTHING, 0)


def test_okx_gap_records_expected_and_got() -> None:
    book = OkxBook("BTC-USDT-SWAP")
    assert (book.exchange, book.need) == (Exchange.OKX, Need.RESUBSCRIBE)
    book.apply_snapshot(ok_snap(10))
    book.apply_diff(ok_diff(10, 15))
    assert book.apply_diff(ok_diff(17, 20)) is G
    assert book.last_gap is not None
    assert (book.last_gap.expected, book.last_gap.got) == (15, 17)


def test_okx_keepalive_only_touches_the_book() -> None:
    book = make_book(Exchange.OKX, "BTC-USDT-SWAP")
    assert isinstance(book, OkxBook)
    book.apply_snapshot(ok_snap(10))
    book.apply_diff(ok_diff(10, 15, [(100.0, 3.0)]))
    before = (book.levels.top_bids(5), book.applied, book.last_update_id)
    assert book.apply_diff(ok_diff(15, 15, [], recv=70_000)) is A
    assert (book.levels.top_bids(5), book.applied, book.last_update_id) == before
    assert (book.keepalives, book.last_recv_ms, book.age_ms(70_500)) == (1, 70_000, 500)
    assert book.usable


def test_okx_real_books5_frames_through_parser_and_book() -> None:
    parser = OkxParser()
    parser.parse_rest(
        INSTRUMENTS_ENDPOINT,
        {
            "code": "0",
            "data": [
                {
                    "instType": "SWAP",
                    "instId": "BTC-USDT-SWAP",
                    "ctVal": "0.01",
                    "ctMult": "1",
                    "ctValCcy": "BTC",
                    "ctType": "linear",
                    "settleCcy": "USDT",
                    "state": "live",
                    "tickSz": "0.1",
                    "lotSz": "0.01",
                }
            ],
        },
        0,
    )
    book = OkxBook("BTC-USDT-SWAP")
    frames = load_jsonl("okx_v5_books5_BTC-USDT-SWAP_2026-08-12.jsonl")[1:]
    for frame in frames:  # books5: each frame is a whole top 5
        [event] = parser.parse_ws_message(frame, 0)
        assert isinstance(event, DepthSnapshot)
        assert book.apply_snapshot(event) is R
    assert (book.last_update_id, book.usable) == (333794734996, True)
    assert book.levels.best_bid() == (63921.4, 4.2193)
    assert book.levels.best_ask() == (63921.5, 7.9041)
    assert (book.levels.bid_count, book.levels.ask_count) == (5, 5)


@pytest.mark.parametrize("zero", ["0", "0.000", "0.00000000"])
def test_zero_quantities_written_any_way_delete(zero: str) -> None:
    book = BinanceBook("BTCUSDT")
    book.apply_snapshot(bn_rest(100, [(100.0, 1.0), (99.0, 2.0)], [(101.0, 1.0)]))
    frame = {
        "e": "depthUpdate",
        "E": 1,
        "T": 1,
        "s": "BTCUSDT",
        "U": 100,
        "u": 101,
        "pu": 99,
        "b": [["100.00", zero], ["98.00", zero]],  # 98 is unknown: deleting it is harmless
        "a": [],
    }
    [diff] = BinanceParser().parse_ws_message(frame, 1)
    assert isinstance(diff, DepthDiff)
    assert book.apply_diff(diff) is A
    assert list(book.levels.iter_bids()) == [(99.0, 2.0)]
    assert book.usable


def test_crossed_book_is_not_usable() -> None:
    book = BinanceBook("BTCUSDT")
    book.apply_snapshot(bn_partial(10, [(101.0, 1.0)], [(101.0, 1.0)]))
    assert book.synced
    assert not book.usable
    book.apply_snapshot(bn_partial(11))
    assert book.usable


def test_book_age_and_touch() -> None:
    book = BybitBook("BTCUSDT")
    assert book.age_ms(1_000) is None
    book.touch(500, 400)
    book.touch(300, 200)  # older frames never move the clocks back
    assert (book.last_recv_ms, book.last_event_ms, book.age_ms(1_000)) == (500, 400, 500)


def test_bybit_real_snapshot_then_delta() -> None:
    parser, book = BybitParser(), BybitBook("BTCUSDT")
    frames = load_jsonl("bybit_v5_linear_orderbook50_BTCUSDT_snapshot_delta_2026-08-12.jsonl")
    results = []
    for frame in frames:
        [event] = parser.parse_ws_message(frame, 0)
        assert isinstance(event, DepthSnapshot | DepthDiff)
        results.append(
            book.apply_snapshot(event)
            if isinstance(event, DepthSnapshot)
            else book.apply_diff(event)
        )
    assert results == [R, A]
    assert book.usable
    assert book.last_update_id == 53935310
    assert (book.levels.bid_count, book.levels.ask_count) == (50, 50)
    assert book.levels.best_bid() == (63982.7, 6.408)
    assert dict(book.levels.iter_bids())[63982.5] == 0.003  # updated by the delta
    assert dict(book.levels.iter_asks())[63990.5] == 0.008


# -- the real SUSHIUSDT replay -----------------------------------------------------------------

REST_SNAPSHOT = load_json("binance_usdm_rest_depth_SUSHIUSDT_limit1000_2021-07-22.json")
LAST_UPDATE_ID = REST_SNAPSHOT["lastUpdateId"]
REPLAY_LINES = load_jsonl("binance_usdm_SUSHIUSDT_depth100ms_replay_2021-07-22.jsonl")
TICKER_LINES = load_jsonl("binance_usdm_SUSHIUSDT_bookTicker_replay_2021-07-22.jsonl")
# Of the session's 305 SUSHIUSDT bookTicker frames, 12 carry the u of an applied depth event;
# the book right after that event must show exactly their best bid and ask (price and size).
EXPECTED_TICKER_MATCHES = 12


def _replay_diffs() -> list[DepthDiff]:
    parser = BinanceParser()
    diffs = []
    for line in REPLAY_LINES:
        [event] = parser.parse_ws_message(orjson.loads(line["raw"]), int(line["recv_ts"] * 1000))
        assert isinstance(event, DepthDiff)
        diffs.append(event)
    return diffs


def _sushi_tickers() -> dict[int, BookTicker]:
    parser, tickers = BinanceParser(), {}
    for line in TICKER_LINES:
        [event] = parser.parse_ws_message(orjson.loads(line["raw"]), int(line["recv_ts"] * 1000))
        assert isinstance(event, BookTicker)
        if event.symbol == "SUSHIUSDT":
            assert event.update_id is not None
            tickers[event.update_id] = event
    return tickers


def _rest_snapshot(recv_ms: int) -> DepthSnapshot:
    endpoint = "/fapi/v1/depth?symbol=SUSHIUSDT&limit=1000"
    [event] = BinanceParser().parse_rest(endpoint, REST_SNAPSHOT, recv_ms)
    assert isinstance(event, DepthSnapshot)
    return event


def _matches_ticker(book: BinanceBook, tickers: dict[int, BookTicker]) -> int:
    """1 if a bookTicker has the book's last u (and then the tops must agree), else 0."""
    ticker = tickers.get(book.last_update_id or -1)
    if ticker is None:
        return 0
    assert book.levels.best_bid() == (ticker.bid_price, ticker.bid_qty)
    assert book.levels.best_ask() == (ticker.ask_price, ticker.ask_qty)
    return 1


def test_replay_fixture_shape() -> None:
    diffs = _replay_diffs()
    assert len(diffs) == 255
    assert [d.final_update_id < LAST_UPDATE_ID for d in diffs[:4]] == [True, True, True, False]
    assert diffs[3].first_update_id == LAST_UPDATE_ID
    tickers = _sushi_tickers()
    assert len(tickers) == 305
    assert sum(u < LAST_UPDATE_ID for u in tickers) == 2  # two predate the REST snapshot


@pytest.mark.parametrize("n_buffered", [3, 4, 10, 255])
def test_sushiusdt_replay_onto_rest_snapshot(n_buffered: int) -> None:
    """The documented procedure on real frames: buffer, snapshot, drop 3, bridge, pu chain."""
    diffs = _replay_diffs()
    tickers = _sushi_tickers()
    book = BinanceBook("SUSHIUSDT")
    for diff in diffs[:n_buffered]:
        assert book.apply_diff(diff) is ApplyResult.BUFFERED
    assert (book.buffered, book.state) == (n_buffered, BookState.AWAITING_SNAPSHOT)

    assert book.apply_snapshot(_rest_snapshot(diffs[n_buffered - 1].recv_ms)) is ApplyResult.RESET
    assert book.buffered == 0
    matches = _matches_ticker(book, tickers)
    if n_buffered == 3:
        # Everything buffered was older than the snapshot: the next live event must bridge it.
        assert (book.dropped, book.state) == (3, BookState.BRIDGING)
        assert diffs[3].first_update_id == LAST_UPDATE_ID
        assert book.apply_diff(diffs[3]) is ApplyResult.APPLIED
        n_buffered = 4
    assert book.usable

    for diff in diffs[n_buffered:]:
        assert diff.prev_update_id == book.last_update_id  # the pu chain never breaks
        assert book.apply_diff(diff) is ApplyResult.APPLIED
        assert book.usable, f"crossed after u={diff.final_update_id}"
        matches += _matches_ticker(book, tickers)

    assert (book.dropped, book.applied, book.gaps, book.resyncs) == (3, 252, 0, 0)
    assert book.last_update_id == diffs[-1].final_update_id == 600860425198
    assert book.last_gap is None
    if n_buffered <= 4:  # every synced state was observed
        assert matches == EXPECTED_TICKER_MATCHES


def test_replay_end_state_does_not_depend_on_buffering() -> None:
    diffs = _replay_diffs()
    ends = []
    for n_buffered in (4, 100, 255):
        book = BinanceBook("SUSHIUSDT")
        for diff in diffs[:n_buffered]:
            book.apply_diff(diff)
        book.apply_snapshot(_rest_snapshot(0))
        for diff in diffs[n_buffered:]:
            book.apply_diff(diff)
        ends.append((list(book.levels.iter_bids()), list(book.levels.iter_asks())))
    assert ends[0] == ends[1] == ends[2]
    bids, asks = ends[0]
    assert bids[0][0] < asks[0][0]
    assert len(bids) > 900
    assert len(asks) > 900
