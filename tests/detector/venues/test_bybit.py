"""Bybit v5 linear venue: topic names; recorded frames in, events out; bad frames raise."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from detector.errors import FrameError, MalformedFrame
from detector.models import (
    BookTicker,
    DepthDiff,
    DepthSnapshot,
    Exchange,
    FundingRate,
    Pong,
    Side,
    Source,
    SubscriptionAck,
    Trade,
)
from detector.venues.bybit import BybitParser, orderbook_topic, tickers_topic, trade_topic
from tests.conftest import load_json, load_jsonl

RECV = 1_800_000_000_000
BOOK = load_jsonl("bybit_v5_linear_orderbook50_BTCUSDT_snapshot_delta_2026-08-12.jsonl")
PYBIT_DELTA = load_json("bybit_v5_linear_orderbook50_delta_2024-08-27_pybit219.json")
TICKERS = load_jsonl("bybit_v5_linear_tickers_BTCUSDT_snapshot_delta_2026-08-12.jsonl")
TRADES = load_jsonl("bybit_v5_linear_subscribe_ack_and_publicTrade_BTCUSDT_2026-08-12.jsonl")
KLINE_BEFORE_ACK = load_jsonl("bybit_v5_linear_data_before_ack_kline_2026-08-12.jsonl")
TARDIS = load_jsonl("bybit_v5_tardis_fixtures_2023-04-05.jsonl")
ERRORS = load_jsonl("error_bodies.jsonl")
REST_ERRORS = [e["body"] for e in ERRORS if "retCode" in e["body"]]
WS_NACKS = [e["body"] for e in ERRORS if e.get("ws")]
BOOK_ENDPOINT = "/v5/market/orderbook?category=linear&symbol=BTCUSDT&limit=200"

# Documented example bodies (Bybit v5 API docs) for endpoints with no recording.
REST_BOOK = {
    "retCode": 0,
    "retMsg": "OK",
    "result": {
        "s": "BTCUSDT",
        "a": [["65557.7", "16.606555"]],
        "b": [["65485.47", "47.081829"]],
        "ts": 1716863719031,
        "u": 230704,
        "seq": 1432604333,
        "cts": 1716863718905,
    },
    "retExtInfo": {},
    "time": 1716863719382,
}
REST_TICKER = {
    "symbol": "BTCUSDT",
    "lastPrice": "16597.00",
    "indexPrice": "16598.54",
    "markPrice": "16596.00",
    "fundingRate": "-0.001034",
    "nextFundingTime": "1672387200000",
    "predictedDeliveryPrice": "",
    "deliveryTime": "0",
    "ask1Size": "1",
    "bid1Price": "16596.00",
    "ask1Price": "16597.50",
    "bid1Size": "1",
    "preOpenPrice": "",
}
REST_TICKERS = {
    "retCode": 0,
    "retMsg": "OK",
    "result": {"category": "linear", "list": [REST_TICKER]},
    "retExtInfo": {},
    "time": 1672376496682,
}


@pytest.fixture
def parser() -> BybitParser:
    return BybitParser()


def _parse(parser: BybitParser, frame: Any) -> Any:
    events = parser.parse_ws_message(frame, RECV)
    assert len(events) == 1
    return events[0]


# -- topic names ---------------------------------------------------------------------------------


def test_topic_names() -> None:
    assert orderbook_topic("btcusdt") == "orderbook.50.BTCUSDT"
    assert orderbook_topic("ETHUSDT", 1) == "orderbook.1.ETHUSDT"
    assert tickers_topic("btcusdt") == "tickers.BTCUSDT"
    assert trade_topic("btcusdt") == "publicTrade.BTCUSDT"
    assert orderbook_topic("SOLUSDT", 200) == "orderbook.200.SOLUSDT"


# -- orderbook -----------------------------------------------------------------------------------


def test_orderbook_snapshot_then_delta(parser: BybitParser) -> None:
    snapshot = _parse(parser, BOOK[0])
    assert isinstance(snapshot, DepthSnapshot)
    assert (snapshot.exchange, snapshot.symbol, snapshot.source, snapshot.depth) == (
        Exchange.BYBIT,
        "BTCUSDT",
        Source.WS,
        50,
    )
    assert (snapshot.update_id, snapshot.event_time_ms, snapshot.recv_ms) == (
        53935309,
        1786540345129,
        RECV,
    )
    assert (len(snapshot.bids), len(snapshot.asks)) == (50, 50)
    assert snapshot.bids[0] == (63982.7, 6.408)
    assert snapshot.asks[-1] == (63991.3, 2.343)

    delta = _parse(parser, BOOK[1])
    assert delta == DepthDiff(
        Exchange.BYBIT,
        "BTCUSDT",
        [(63982.5, 0.003), (63980.6, 0.004)],
        [(63990.5, 0.008)],
        53935310,
        53935310,
        None,
        1786540345149,
        RECV,
        50,
    )


def test_orderbook_delta_with_deletion(parser: BybitParser) -> None:
    delta = _parse(parser, PYBIT_DELTA)
    assert isinstance(delta, DepthDiff)
    assert (delta.final_update_id, delta.event_time_ms) == (87208563, 1724761127354)
    assert delta.bids == []
    assert delta.asks == [(62414.3, 0.304), (62414.8, 0.0)]


def test_orderbook_depth_1_frames(parser: BybitParser) -> None:
    snapshot, delta = (_parse(parser, frame) for frame in TARDIS[:2])
    assert isinstance(snapshot, DepthSnapshot)
    assert (snapshot.depth, snapshot.update_id) == (1, 7003305)
    assert (snapshot.bids, snapshot.asks) == ([(28552.0, 0.047)], [(28552.1, 25.433)])
    assert isinstance(delta, DepthDiff)
    assert (delta.final_update_id, delta.bids, delta.asks) == (7003306, [(28552.0, 0.012)], [])


def test_delta_with_u_1_is_a_full_book(parser: BybitParser) -> None:
    # u == 1: the service restarted and the frame is a full book.
    frame = copy.deepcopy(BOOK[1])
    frame["data"]["u"] = 1
    event = _parse(parser, frame)
    assert isinstance(event, DepthSnapshot)
    assert (event.update_id, event.depth, event.source) == (1, 50, Source.WS)


# -- tickers -------------------------------------------------------------------------------------


def test_tickers_snapshot_then_delta(parser: BybitParser) -> None:
    funding = FundingRate(
        exchange=Exchange.BYBIT,
        symbol="BTCUSDT",
        rate=0.0000544,
        interval_hours=8.0,
        next_funding_ms=1786550400000,
        mark_price=63958.6,
        index_price=63986.67,
        event_time_ms=1786540397684,
        recv_ms=RECV,
    )
    ticker = BookTicker(
        Exchange.BYBIT, "BTCUSDT", 63958.6, 6.907, 63958.7, 2.75, None, 1786540397684, RECV
    )
    assert parser.parse_ws_message(TICKERS[0], RECV) == [funding, ticker]
    # The delta carries only indexPrice: the rest comes from the cached snapshot.
    assert parser.parse_ws_message(TICKERS[1], RECV + 300) == [
        FundingRate(
            Exchange.BYBIT,
            "BTCUSDT",
            0.0000544,
            8.0,
            1786550400000,
            63958.6,
            63986.66,
            1786540397983,
            RECV + 300,
        )
    ]


def test_tardis_tickers_snapshot_without_interval_and_delta_without_snapshot(
    parser: BybitParser,
) -> None:
    events = parser.parse_ws_message(TARDIS[2], RECV)
    assert events == [
        FundingRate(
            Exchange.BYBIT,
            "BTCUSDT",
            0.0001,
            None,
            1680681600000,
            28552.81,
            28562.25,
            1680673821770,
            RECV,
        ),
        BookTicker(
            Exchange.BYBIT, "BTCUSDT", 28550.7, 2.049, 28550.8, 15.328, None, 1680673821770, RECV
        ),
    ]
    assert parser.parse_ws_message(TARDIS[3], RECV) == []  # BTCUSD: no snapshot to merge into


def _ticker_delta(**fields: str) -> dict[str, Any]:
    return {
        "topic": "tickers.BTCUSDT",
        "type": "delta",
        "data": {"symbol": "BTCUSDT", **fields},
        "cs": 760580218858,
        "ts": 1786540398000,
    }


@pytest.mark.parametrize(
    ("fields", "kinds"),
    [
        ({"volume24h": "61875.0"}, []),
        ({"lastPrice": "63959.00", "openInterest": "57798.2"}, []),
        ({"fundingRate": "0.0001"}, [FundingRate]),
        ({"nextFundingTime": "1786579200000"}, [FundingRate]),
        ({"fundingIntervalHour": "4"}, [FundingRate]),
        ({"markPrice": "63960.00"}, [FundingRate]),
        ({"bid1Size": "7.000"}, [BookTicker]),
        ({"ask1Price": "63959.00", "ask1Size": "1.0"}, [BookTicker]),
        ({"markPrice": "63960.00", "bid1Price": "63958.90"}, [FundingRate, BookTicker]),
        ({"bid1Price": ""}, []),  # "" means unknown: no best bid, no BookTicker
        ({"fundingRate": ""}, []),
    ],
)
def test_tickers_delta_emits_what_it_touched(
    parser: BybitParser, fields: dict[str, str], kinds: list[type]
) -> None:
    parser.parse_ws_message(TICKERS[0], RECV)
    events = parser.parse_ws_message(_ticker_delta(**fields), RECV)
    assert [type(e) for e in events] == kinds


def test_tickers_delta_merges_into_the_cache(parser: BybitParser) -> None:
    parser.parse_ws_message(TICKERS[0], RECV)
    parser.parse_ws_message(_ticker_delta(fundingIntervalHour="4", fundingRate="0.0002"), RECV)
    [book] = parser.parse_ws_message(_ticker_delta(bid1Size="1.5"), RECV)
    assert isinstance(book, BookTicker)
    assert (book.bid_price, book.bid_qty, book.ask_price, book.ask_qty) == (
        63958.6,
        1.5,
        63958.7,
        2.75,
    )
    [funding] = parser.parse_ws_message(_ticker_delta(indexPrice="63990.00"), RECV)
    assert isinstance(funding, FundingRate)
    assert (funding.rate, funding.interval_hours, funding.index_price) == (0.0002, 4.0, 63990.0)


def test_tickers_snapshot_replaces_the_cache(parser: BybitParser) -> None:
    parser.parse_ws_message(TICKERS[0], RECV)
    snapshot = copy.deepcopy(TICKERS[0])
    del snapshot["data"]["fundingIntervalHour"]
    [funding, _] = parser.parse_ws_message(snapshot, RECV)
    assert isinstance(funding, FundingRate)
    assert funding.interval_hours is None


def test_bad_tickers_delta_changes_nothing(parser: BybitParser) -> None:
    parser.parse_ws_message(TICKERS[0], RECV)
    with pytest.raises(MalformedFrame, match="bid1Price"):
        parser.parse_ws_message(_ticker_delta(bid1Price="abc"), RECV)
    [book] = parser.parse_ws_message(_ticker_delta(ask1Size="3.0"), RECV)
    assert isinstance(book, BookTicker)
    assert (book.bid_price, book.ask_qty) == (63958.6, 3.0)


# -- trades, replies, ignored topics ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "qty", "trade_ms"),
    [(1, 0.015, 1786540363843), (2, 0.002, 1786540364137)],
)
def test_public_trade_frames(parser: BybitParser, line: int, qty: float, trade_ms: int) -> None:
    assert parser.parse_ws_message(TRADES[line], RECV) == [
        Trade(Exchange.BYBIT, "BTCUSDT", 63976.1, qty, Side.BUY, trade_ms, RECV)
    ]


def test_public_trade_one_event_per_element(parser: BybitParser) -> None:
    frame = copy.deepcopy(TRADES[1])
    second = {**frame["data"][0], "S": "Sell", "v": "1.5", "p": "63976.00"}
    frame["data"].append(second)
    events = parser.parse_ws_message(frame, RECV)
    assert [(e.side, e.qty, e.price) for e in events if isinstance(e, Trade)] == [
        (Side.BUY, 0.015, 63976.1),
        (Side.SELL, 1.5, 63976.0),
    ]


def test_subscribe_ack(parser: BybitParser) -> None:
    assert parser.parse_ws_message(TRADES[0], RECV) == [
        SubscriptionAck(Exchange.BYBIT, True, "1", "", None, RECV)
    ]


def test_data_before_ack(parser: BybitParser) -> None:
    kline, ack = KLINE_BEFORE_ACK
    assert parser.parse_ws_message(kline, RECV) == []
    assert parser.parse_ws_message(ack, RECV) == [
        SubscriptionAck(Exchange.BYBIT, True, "1", "", None, RECV)
    ]


@pytest.mark.parametrize(
    ("body", "request_id", "message", "topic"),
    [
        (WS_NACKS[0], "kline.5.XRPUSDT", "Params Error", None),
        (
            WS_NACKS[1],
            None,
            "error:handler not found,topic:orderbook.500.BTCUSDT",
            "orderbook.500.BTCUSDT",
        ),
    ],
)
def test_subscribe_nacks(
    parser: BybitParser,
    body: dict[str, Any],
    request_id: str | None,
    message: str,
    topic: str | None,
) -> None:
    assert parser.parse_ws_message(body, RECV) == [
        SubscriptionAck(Exchange.BYBIT, False, request_id, message, topic, RECV)
    ]


@pytest.mark.parametrize(
    ("frame", "events"),
    [
        (
            {"success": True, "ret_msg": "pong", "conn_id": "c1", "req_id": "9", "op": "ping"},
            [Pong(Exchange.BYBIT, RECV)],
        ),
        (
            {"req_id": "", "op": "pong", "args": ["1675418560633"], "conn_id": "c1"},
            [Pong(Exchange.BYBIT, RECV)],
        ),
        ({"success": True, "ret_msg": "", "conn_id": "c1", "op": "unsubscribe"}, []),
        ({"topic": "liquidation.BTCUSDT", "type": "snapshot", "ts": 1, "data": {}}, []),
    ],
)
def test_heartbeats_and_ignored_frames(
    parser: BybitParser, frame: dict[str, Any], events: list[Pong]
) -> None:
    assert parser.parse_ws_message(frame, RECV) == events


# -- REST ----------------------------------------------------------------------------------------


def test_rest_orderbook(parser: BybitParser) -> None:
    assert parser.parse_rest(BOOK_ENDPOINT, REST_BOOK, RECV) == [
        DepthSnapshot(
            Exchange.BYBIT,
            "BTCUSDT",
            [(65485.47, 47.081829)],
            [(65557.7, 16.606555)],
            230704,
            1716863719031,
            RECV,
            Source.REST,
        )
    ]


def test_rest_tickers(parser: BybitParser) -> None:
    delivery = {**REST_TICKER, "symbol": "BTC-26DEC25", "fundingRate": "", "nextFundingTime": ""}
    body = copy.deepcopy(REST_TICKERS)
    body["result"]["list"].append(delivery)
    events = parser.parse_rest("/v5/market/tickers?category=linear", body, RECV)
    assert events == [
        FundingRate(
            Exchange.BYBIT,
            "BTCUSDT",
            -0.001034,
            None,
            1672387200000,
            16596.0,
            16598.54,
            1672376496682,
            RECV,
        ),
        BookTicker(
            Exchange.BYBIT, "BTCUSDT", 16596.0, 1.0, 16597.5, 1.0, None, 1672376496682, RECV
        ),
        BookTicker(
            Exchange.BYBIT, "BTC-26DEC25", 16596.0, 1.0, 16597.5, 1.0, None, 1672376496682, RECV
        ),
    ]


@pytest.mark.parametrize(
    "endpoint",
    [
        "/v5/market/funding/history?category=linear&symbol=BTCUSDT",
        "/v5/market/instruments-info?category=linear",
        "/v5/market/kline?category=linear&symbol=BTCUSDT&interval=1",
    ],
)
def test_other_rest_paths_give_no_events(parser: BybitParser, endpoint: str) -> None:
    body = {"retCode": 0, "retMsg": "OK", "result": {"list": []}, "time": 1}
    assert parser.parse_rest(endpoint, body, RECV) == []


@pytest.mark.parametrize("body", REST_ERRORS)
def test_rest_error_envelopes_raise_frame_error(parser: BybitParser, body: dict[str, Any]) -> None:
    with pytest.raises(FrameError) as info:
        parser.parse_rest(BOOK_ENDPOINT, body, RECV)
    assert not isinstance(info.value, MalformedFrame)
    assert "10001" in info.value.reason
    assert "params error: symbol invalid" in info.value.reason


# -- malformed input -----------------------------------------------------------------------------


def _book_with(line: int = 1, **changes: Any) -> dict[str, Any]:
    frame = copy.deepcopy(BOOK[line])
    for key, value in changes.items():
        target = frame if key in ("topic", "type", "ts") else frame["data"]
        if value is None:
            del target[key]
        else:
            target[key] = value
    return frame


@pytest.mark.parametrize(
    ("frame", "needle"),
    [
        ([], "must be an object"),
        ("pong", "must be an object"),
        ({"data": {}}, "neither 'topic' nor 'op'"),
        ({"topic": 5, "data": {}}, "'topic'"),
        (_book_with(type=None), "'type'"),
        (_book_with(ts=None), "'ts'"),
        (_book_with(u=None), "'u'"),
        (_book_with(b=None), "'b'"),
        (_book_with(type="update"), "unknown type"),
        (_book_with(topic="orderbook.BTCUSDT"), "bad topic"),
        (_book_with(u="53935310"), "integers"),
        (_book_with(ts=1.5), "integers"),
        (_book_with(s=7), "'s'"),
        (_book_with(b=[["63982.50"]]), "'b' level 0"),
        (_book_with(a=[["63990.50", "x"]]), "'a' level 0"),
        (_book_with(a=[["-63990.50", "1"]]), "invalid price"),
        (_book_with(a=[["inf", "1"]]), "invalid price"),
        (_book_with(b=[["63982.50", "-0.1"]]), "invalid size"),
        (_book_with(b=[["63982.50", "NaN"]]), "invalid size"),
        ({**BOOK[1], "data": ["x"]}, "'data' must be an object"),
        ({**TICKERS[0], "data": "x"}, "'data'"),
        ({**TICKERS[0], "type": "update"}, "unknown type"),
        ({k: v for k, v in TICKERS[0].items() if k != "ts"}, "'ts'"),
        ({**TICKERS[0], "data": {**TICKERS[0]["data"], "fundingRate": "x"}}, "'fundingRate'"),
        ({**TICKERS[0], "data": {**TICKERS[0]["data"], "ask1Size": "-1"}}, "'ask1Size'"),
        ({**TICKERS[0], "data": {**TICKERS[0]["data"], "fundingIntervalHour": "0"}}, "> 0"),
        ({**TICKERS[0], "data": {**TICKERS[0]["data"], "nextFundingTime": "soon"}}, "'next"),
        ({**TRADES[1], "data": {}}, "must be a list"),
        ({**TRADES[1], "data": [{**TRADES[1]["data"][0], "S": "buy"}]}, "'S'"),
        ({**TRADES[1], "data": [{**TRADES[1]["data"][0], "v": "nan"}]}, "'v'"),
        ({**TRADES[1], "data": [{**TRADES[1]["data"][0], "T": None}]}, "'T'"),
        ({**TRADES[1], "data": [3]}, "must be an object"),
        ({"op": "subscribe", "ret_msg": ""}, "'success'"),
        ({"op": "subscribe", "success": "yes"}, "'success'"),
    ],
)
def test_malformed_ws_frames(parser: BybitParser, frame: Any, needle: str) -> None:
    parser.parse_ws_message(TICKERS[0], RECV)
    with pytest.raises(MalformedFrame) as info:
        parser.parse_ws_message(frame, RECV)
    assert needle in info.value.reason
    assert info.value.exchange == "bybit"
    # Nothing is lost: the parser and its ticker cache work as if the bad frame never came.
    assert isinstance(_parse(parser, BOOK[1]), DepthDiff)
    [funding] = parser.parse_ws_message(TICKERS[1], RECV)
    assert isinstance(funding, FundingRate)
    assert (funding.rate, funding.index_price) == (0.0000544, 63986.66)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ([], "must be an object"),
        ({"retMsg": "OK", "result": {}}, "'retCode'"),
        ({"retCode": "0", "result": {}}, "'retCode'"),
        ({"retCode": 0, "retMsg": "OK"}, "'result'"),
        ({"retCode": 0, "retMsg": "OK", "result": []}, "'result'"),
        ({**REST_BOOK, "result": {**REST_BOOK["result"], "u": None}}, "'u'"),
        ({**REST_BOOK, "result": {**REST_BOOK["result"], "b": [["1", "2", "3"]]}}, "'b' level 0"),
        ({**REST_BOOK, "result": {**REST_BOOK["result"], "s": ""}}, "'s'"),
    ],
)
def test_malformed_rest_bodies(parser: BybitParser, body: Any, needle: str) -> None:
    with pytest.raises(MalformedFrame) as info:
        parser.parse_rest(BOOK_ENDPOINT, body, RECV)
    assert needle in info.value.reason
    assert len(parser.parse_rest(BOOK_ENDPOINT, REST_BOOK, RECV)) == 1


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({**REST_TICKERS, "result": {"list": {}}}, "'result.list'"),
        ({**REST_TICKERS, "result": {"list": ["x"]}}, "must be an object"),
        ({k: v for k, v in REST_TICKERS.items() if k != "time"}, "'time'"),
    ],
)
def test_malformed_rest_tickers(parser: BybitParser, body: Any, needle: str) -> None:
    with pytest.raises(MalformedFrame) as info:
        parser.parse_rest("/v5/market/tickers?category=linear", body, RECV)
    assert needle in info.value.reason
