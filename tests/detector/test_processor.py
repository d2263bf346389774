"""OrderBookProcessor: any book payload of either venue in, one OrderBookSnapshot shape out."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from detector.book import ApplyResult, BookState
from detector.errors import (
    BookNotSynced,
    ConfigError,
    DetectorError,
    FrameError,
    InvalidBook,
    MalformedFrame,
)
from detector.models import DepthDiff, Exchange, Need
from detector.processor import OrderBookProcessor, OrderBookSnapshot
from tests.conftest import load_json, load_jsonl

BN_REST = load_json("binance_usdm_rest_depth_SUSHIUSDT_limit1000_2021-07-22.json")
BN_DIFFS = [
    orjson.loads(line["raw"])
    for line in load_jsonl("binance_usdm_SUSHIUSDT_depth100ms_replay_2021-07-22.jsonl")
]
BN_TICKER = load_jsonl("binance_usdm_ws_bookTicker_combined_2021-07-22.jsonl")[0]
BY_BOOK = load_jsonl("bybit_v5_linear_orderbook50_BTCUSDT_snapshot_delta_2026-08-12.jsonl")
BY_REST_RESULT = {
    "s": "BTCUSDT",
    "a": [["65557.7", "16.606555"], ["65558.0", "1.0"]],
    "b": [["65485.47", "47.081829"], ["65485.0", "2.0"]],
    "ts": 1716863719031,
    "u": 230704,
    "seq": 1432604333,
    "cts": 1716863718905,
}
BY_REST = {
    "retCode": 0,
    "retMsg": "OK",
    "result": BY_REST_RESULT,
    "retExtInfo": {},
    "time": 1716863719382,
}
RECV = 1_900_000_000_000


@pytest.fixture
def processor() -> OrderBookProcessor:
    return OrderBookProcessor(depth=20)


def _synced_binance(processor: OrderBookProcessor) -> OrderBookSnapshot:
    """SUSHIUSDT synced the documented way: buffered diffs, the REST snapshot, then the stream."""
    for frame in BN_DIFFS[:4]:
        with pytest.raises(BookNotSynced):
            processor.process_orderbook(frame, "SUSHIUSDT", "binance")
    processor.process_orderbook(BN_REST, "SUSHIUSDT", Exchange.BINANCE)
    snapshot = None
    for frame in BN_DIFFS[4:]:
        snapshot = processor.process_orderbook(frame, "SUSHIUSDT", "binance")
    assert snapshot is not None
    return snapshot


def _assert_shape(snapshot: OrderBookSnapshot, exchange: Exchange, symbol: str, depth: int) -> None:
    assert isinstance(snapshot, OrderBookSnapshot)
    assert (snapshot.exchange, snapshot.symbol) == (exchange, symbol)
    assert isinstance(snapshot.bids, tuple)
    assert isinstance(snapshot.asks, tuple)
    assert 0 < len(snapshot.bids) <= depth
    assert 0 < len(snapshot.asks) <= depth
    for side in (snapshot.bids, snapshot.asks):
        for price, size in side:
            assert type(price) is float
            assert type(size) is float
            assert price > 0
            assert size > 0
    bid_prices = [p for p, _ in snapshot.bids]
    ask_prices = [p for p, _ in snapshot.asks]
    assert bid_prices == sorted(bid_prices, reverse=True)  # best first
    assert ask_prices == sorted(ask_prices)
    assert snapshot.best_bid == snapshot.bids[0]
    assert snapshot.best_ask == snapshot.asks[0]
    assert snapshot.bids[0][0] < snapshot.asks[0][0]
    assert isinstance(snapshot.update_id, int)
    assert snapshot.timestamp > 0
    assert snapshot.recv_ms > 0


# -- the four payload forms ------------------------------------------------------------------------


def test_binance_rest_body(processor: OrderBookProcessor) -> None:
    snapshot = processor.process_orderbook(BN_REST, "sushiusdt", "binance", RECV)
    _assert_shape(snapshot, Exchange.BINANCE, "SUSHIUSDT", 20)
    assert len(snapshot.bids) == 20
    assert snapshot.best_bid == (7.611, 6.0)
    assert snapshot.best_ask == (7.612, 297.0)
    assert (snapshot.update_id, snapshot.timestamp, snapshot.recv_ms) == (
        600859605926,
        1626992741264,
        RECV,
    )
    # The REST book is served before the stream has bridged it: it is the exchange's own book.
    assert processor.book(Exchange.BINANCE, "SUSHIUSDT").state is BookState.BRIDGING


def test_binance_diff_stream_raw_and_combined(processor: OrderBookProcessor) -> None:
    processor.process_orderbook(BN_REST, "SUSHIUSDT", "binance")
    combined = processor.process_orderbook(BN_DIFFS[3], "SUSHIUSDT", "binance")
    raw = processor.process_orderbook(BN_DIFFS[4]["data"], "SUSHIUSDT", "binance")
    for snapshot in (combined, raw):
        _assert_shape(snapshot, Exchange.BINANCE, "SUSHIUSDT", 20)
    assert combined.update_id == BN_DIFFS[3]["data"]["u"]
    assert raw.update_id == BN_DIFFS[4]["data"]["u"]
    assert raw.timestamp == BN_DIFFS[4]["data"]["E"]
    assert processor.book(Exchange.BINANCE, "SUSHIUSDT").synced


def test_binance_full_replay_through_processor(processor: OrderBookProcessor) -> None:
    snapshot = _synced_binance(processor)
    _assert_shape(snapshot, Exchange.BINANCE, "SUSHIUSDT", 20)
    assert snapshot.update_id == 600860425198
    book = processor.book(Exchange.BINANCE, "SUSHIUSDT")
    assert (book.dropped, book.applied, book.gaps) == (3, 252, 0)
    assert snapshot.bids == tuple(book.levels.top_bids(20))


def test_binance_partial_depth(processor: OrderBookProcessor) -> None:
    frame = {"stream": "sushiusdt@depth20@100ms", "data": BN_DIFFS[0]["data"]}
    snapshot = processor.process_orderbook(frame, "SUSHIUSDT", "binance")
    _assert_shape(snapshot, Exchange.BINANCE, "SUSHIUSDT", 20)
    assert snapshot.bids == ((7.611, 2.0), (7.504, 813.0))  # the 0-size level is left out
    assert snapshot.asks == ((7.615, 1563.0), (7.622, 3284.0))


def test_bybit_ws_snapshot_and_delta(processor: OrderBookProcessor) -> None:
    first = processor.process_orderbook(BY_BOOK[0], "BTCUSDT", "bybit")
    second = processor.process_orderbook(BY_BOOK[1], "BTCUSDT", "BYBIT")
    for snapshot in (first, second):
        _assert_shape(snapshot, Exchange.BYBIT, "BTCUSDT", 20)
    assert (first.update_id, second.update_id) == (53935309, 53935310)
    assert first.best_bid == second.best_bid == (63982.7, 6.408)
    assert dict(second.bids)[63982.5] == 0.003
    assert (second.timestamp, second.recv_ms) == (1786540345149, 1786540345149)


@pytest.mark.parametrize("payload", [BY_REST, BY_REST_RESULT], ids=["envelope", "bare-result"])
def test_bybit_rest(processor: OrderBookProcessor, payload: dict[str, Any]) -> None:
    snapshot = processor.process_orderbook(payload, "BTCUSDT", "bybit", RECV)
    _assert_shape(snapshot, Exchange.BYBIT, "BTCUSDT", 20)
    assert snapshot == OrderBookSnapshot(
        Exchange.BYBIT,
        "BTCUSDT",
        ((65485.47, 47.081829), (65485.0, 2.0)),
        ((65557.7, 16.606555), (65558.0, 1.0)),
        230704,
        1716863719031,
        RECV,
    )


def test_bybit_rest_does_not_touch_the_ws_book(processor: OrderBookProcessor) -> None:
    ws = processor.process_orderbook(BY_BOOK[0], "BTCUSDT", "bybit")
    rest = processor.process_orderbook(BY_REST, "BTCUSDT", "bybit")
    assert rest.update_id == 230704
    assert processor.snapshot(Exchange.BYBIT, "BTCUSDT", depth=20) == ws
    assert processor.process_orderbook(BY_BOOK[1], "BTCUSDT", "bybit").update_id == 53935310


def test_recv_ms_defaults_to_the_payload_time(processor: OrderBookProcessor) -> None:
    assert processor.process_orderbook(BN_REST, "SUSHIUSDT", "binance").recv_ms == 1626992741264
    assert processor.process_orderbook(BY_REST, "BTCUSDT", "bybit").recv_ms == 1716863719031


# -- snapshot, properties, routing -----------------------------------------------------------------


def test_snapshot_depth_and_properties(processor: OrderBookProcessor) -> None:
    processor.process_orderbook(BY_BOOK[0], "BTCUSDT", "bybit")
    top = processor.snapshot(Exchange.BYBIT, "BTCUSDT", depth=3)
    assert (len(top.bids), len(top.asks)) == (3, 3)
    assert len(processor.snapshot(Exchange.BYBIT, "BTCUSDT").bids) == 20
    bid, ask = top.bids[0][0], top.asks[0][0]
    assert top.mid == pytest.approx((bid + ask) / 2)
    assert top.spread == pytest.approx(ask - bid)
    assert top.spread_bps == pytest.approx((ask - bid) / ((bid + ask) / 2) * 10_000)


def test_properties_of_a_one_sided_book() -> None:
    snapshot = OrderBookSnapshot(Exchange.BINANCE, "X", ((1.0, 1.0),), (), 1, 1, 1)
    assert snapshot.best_bid == (1.0, 1.0)
    assert (snapshot.best_ask, snapshot.mid, snapshot.spread, snapshot.spread_bps) == (
        None,
        None,
        None,
        None,
    )


def test_apply_routes_by_exchange_and_symbol(processor: OrderBookProcessor) -> None:
    diff = DepthDiff(Exchange.BINANCE, "ETHUSDT", [(1.0, 1.0)], [], 5, 6, 4, 1, 1)
    assert processor.apply(diff) is ApplyResult.BUFFERED
    assert processor.book(Exchange.BINANCE, "ETHUSDT").buffered == 1
    assert processor.book(Exchange.BYBIT, "ETHUSDT").state is BookState.AWAITING_SNAPSHOT
    assert processor.book(Exchange.BINANCE, "BTCUSDT").buffered == 0
    assert processor.book(Exchange.BINANCE, "ETHUSDT") is processor.book(
        Exchange.BINANCE, "ETHUSDT"
    )


def test_one_bad_symbol_leaves_the_others_alone(processor: OrderBookProcessor) -> None:
    processor.process_orderbook(BY_BOOK[0], "BTCUSDT", "bybit")
    eth = copy.deepcopy(BY_BOOK[0])
    eth["topic"], eth["data"]["s"] = "orderbook.50.ETHUSDT", "ETHUSDT"
    processor.process_orderbook(eth, "ETHUSDT", "bybit")
    jump = copy.deepcopy(BY_BOOK[1])
    jump["topic"], jump["data"]["s"] = "orderbook.50.ETHUSDT", "ETHUSDT"
    jump["data"]["u"] += 5  # skips 4 updates
    with pytest.raises(BookNotSynced) as info:
        processor.process_orderbook(jump, "ETHUSDT", "bybit")
    assert info.value.need == Need.RESUBSCRIBE
    assert processor.process_orderbook(BY_BOOK[1], "BTCUSDT", "bybit").update_id == 53935310


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "symbol", "exchange", "need"),
    [
        (BN_DIFFS[0], "SUSHIUSDT", "binance", Need.SNAPSHOT),  # buffered before the REST snapshot
        (BN_DIFFS[0]["data"], "SUSHIUSDT", "binance", Need.SNAPSHOT),
        (BY_BOOK[1], "BTCUSDT", "bybit", Need.RESUBSCRIBE),  # a delta before any snapshot
    ],
)
def test_book_not_synced(
    processor: OrderBookProcessor, payload: Any, symbol: str, exchange: str, need: Need
) -> None:
    with pytest.raises(BookNotSynced) as info:
        processor.process_orderbook(payload, symbol, exchange)
    assert info.value.need == need
    assert info.value.symbol == symbol


def test_snapshot_of_an_unknown_book_is_not_synced(processor: OrderBookProcessor) -> None:
    with pytest.raises(BookNotSynced) as info:
        processor.snapshot(Exchange.BINANCE, "NOPEUSDT")
    assert info.value.need == Need.SNAPSHOT


def test_binance_gap_needs_a_snapshot(processor: OrderBookProcessor) -> None:
    _synced_binance(processor)
    broken = copy.deepcopy(BN_DIFFS[-1])
    broken["data"]["pu"], broken["data"]["U"], broken["data"]["u"] = 1, 700000000000, 700000000001
    with pytest.raises(BookNotSynced) as info:
        processor.process_orderbook(broken, "SUSHIUSDT", "binance")
    assert info.value.need == Need.SNAPSHOT
    assert processor.book(Exchange.BINANCE, "SUSHIUSDT").gaps == 1


@pytest.mark.parametrize("form", ["ws", "rest"])
def test_crossed_book_is_invalid(processor: OrderBookProcessor, form: str) -> None:
    if form == "ws":
        payload = copy.deepcopy(BY_BOOK[0])
        payload["data"]["b"].insert(0, ["64000.00", "1.0"])  # above the best ask
    else:
        payload = copy.deepcopy(BY_REST)
        payload["result"]["b"].insert(0, ["65600.0", "1.0"])
    with pytest.raises(InvalidBook, match="crossed"):
        processor.process_orderbook(payload, "BTCUSDT", "bybit")


@pytest.mark.parametrize(
    ("payload", "symbol", "exchange", "needle"),
    [
        (BN_DIFFS[0], "BTCUSDT", "binance", "SUSHIUSDT, not BTCUSDT"),
        (BY_BOOK[0], "ETHUSDT", "bybit", "BTCUSDT, not ETHUSDT"),
        (BY_REST, "ETHUSDT", "bybit", "BTCUSDT, not ETHUSDT"),
        (BN_REST, "SUSHIUSDT", "kraken", "unknown exchange 'kraken'"),
        (BN_REST, "SUSHIUSDT", "", "unknown exchange"),
        (BN_TICKER, "SUSHIUSDT", "binance", "not an order book payload"),
        ({"result": None, "id": 1}, "SUSHIUSDT", "binance", "not an order book payload"),
        ({"op": "subscribe", "success": True}, "BTCUSDT", "bybit", "not an order book"),
        ([BN_REST], "SUSHIUSDT", "binance", "must be an object"),
        ("{}", "SUSHIUSDT", "binance", "must be an object"),
        ({**BN_REST, "bids": [["7.6", "nan"]]}, "SUSHIUSDT", "binance", "invalid size"),
        ({**BY_REST_RESULT, "u": "x"}, "BTCUSDT", "bybit", "'u'"),
        ({"s": "BTCUSDT"}, "BTCUSDT", "bybit", "missing field"),
    ],
)
def test_malformed_payloads(
    processor: OrderBookProcessor, payload: Any, symbol: str, exchange: str, needle: str
) -> None:
    with pytest.raises(MalformedFrame) as info:
        processor.process_orderbook(payload, symbol, exchange)
    assert needle in str(info.value)
    # Nothing was applied: the processor goes on as if the payload never came.
    snapshot = processor.process_orderbook(BY_BOOK[0], "BTCUSDT", "bybit")
    assert snapshot.update_id == 53935309


def test_malformed_diff_does_not_break_a_synced_book(processor: OrderBookProcessor) -> None:
    processor.process_orderbook(BY_BOOK[0], "BTCUSDT", "bybit")
    bad = copy.deepcopy(BY_BOOK[1])
    bad["data"]["a"] = [["63990.50", "-1"]]
    with pytest.raises(MalformedFrame):
        processor.process_orderbook(bad, "BTCUSDT", "bybit")
    assert processor.process_orderbook(BY_BOOK[1], "BTCUSDT", "bybit").update_id == 53935310


@pytest.mark.parametrize(
    ("payload", "exchange", "code"),
    [({"code": -1121, "msg": "Invalid symbol."}, "binance", "-1121")]
    + [
        (line["body"], "bybit", "10001")
        for line in load_jsonl("error_bodies.jsonl")
        if "retCode" in line["body"]
    ],
)
def test_error_bodies(
    processor: OrderBookProcessor, payload: dict[str, Any], exchange: str, code: str
) -> None:
    with pytest.raises(FrameError) as info:
        processor.process_orderbook(payload, "BTCUSDT", exchange)
    assert not isinstance(info.value, MalformedFrame)
    assert code in info.value.reason


def test_errors_are_detector_errors() -> None:
    with pytest.raises(ConfigError):
        OrderBookProcessor(depth=0)
    with pytest.raises(DetectorError):
        OrderBookProcessor().process_orderbook({}, "X", "kraken")
