"""Binance USDⓈ-M venue: stream names; recorded frames in, events out; bad frames raise."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from detector.errors import FrameError, MalformedFrame
from detector.models import (
    BookTicker,
    DepthDiff,
    DepthSnapshot,
    Exchange,
    FundingInterval,
    FundingRate,
    Side,
    Source,
    SubscriptionAck,
    Trade,
)
from detector.venues.binance import (
    BinanceParser,
    agg_trade_stream,
    book_ticker_stream,
    depth_stream,
    is_partial_depth_stream,
    mark_price_stream,
)
from tests.conftest import load_json, load_jsonl

RECV = 1_700_000_000_000
DEPTH = load_jsonl("binance_usdm_ws_depth100ms_combined_2021-07-22.jsonl")
BOOK_TICKERS = load_jsonl("binance_usdm_ws_bookTicker_combined_2021-07-22.jsonl")
AGG_TRADES = load_jsonl("binance_usdm_ws_aggTrade_combined_2021-07-22.jsonl")
MARKET_ACK = load_jsonl("binance_usdm_market_ws_ack_miniTicker_ps_st_2026-08-12.jsonl")
REST_DEPTH = load_json("binance_usdm_rest_depth_SUSHIUSDT_limit1000_2021-07-22.json")
REPLAY = load_jsonl("binance_usdm_SUSHIUSDT_depth100ms_replay_2021-07-22.jsonl")
ERROR_BODIES = [line["body"] for line in load_jsonl("error_bodies.jsonl") if "code" in line["body"]]
DEPTH_ENDPOINT = "/fapi/v1/depth?symbol=SUSHIUSDT&limit=1000"

# Documented example payloads (Binance USDⓈ-M API docs) for message kinds with no recording.
MARK_PRICE = {
    "e": "markPriceUpdate",
    "E": 1562305380000,
    "s": "BTCUSDT",
    "p": "11794.15000000",
    "i": "11784.62659091",
    "P": "11784.25641265",
    "r": "0.00038167",
    "T": 1562306400000,
}
PREMIUM_INDEX = {
    "symbol": "BTCUSDT",
    "markPrice": "11793.63104562",
    "indexPrice": "11781.80495970",
    "estimatedSettlePrice": "11781.16138815",
    "lastFundingRate": "0.00038246",
    "interestRate": "0.00010000",
    "nextFundingTime": 1597392000000,
    "time": 1597370495002,
}
REST_BOOK_TICKER = {
    "lastUpdateId": 1027024,
    "symbol": "BTCUSDT",
    "bidPrice": "4.00000000",
    "bidQty": "431.00000000",
    "askPrice": "4.00000200",
    "askQty": "9.00000000",
    "time": 1589437530011,
}


@pytest.fixture
def parser() -> BinanceParser:
    return BinanceParser()


def _parse(parser: BinanceParser, frame: Any) -> Any:
    events = parser.parse_ws_message(frame, RECV)
    assert len(events) == 1
    return events[0]


# -- stream names ----------------------------------------------------------------------------


def test_stream_names() -> None:
    assert depth_stream("BTCUSDT") == "btcusdt@depth@100ms"
    assert depth_stream("BTCUSDT", "250ms") == "btcusdt@depth"
    assert book_ticker_stream("BTCUSDT") == "btcusdt@bookTicker"
    assert agg_trade_stream("BTCUSDT") == "btcusdt@aggTrade"
    assert mark_price_stream("BTCUSDT") == "btcusdt@markPrice"
    assert mark_price_stream("BTCUSDT", every_second=True) == "btcusdt@markPrice@1s"
    assert depth_stream("ETHUSDT") == "ethusdt@depth@100ms"


# -- depth -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "symbol", "first", "final", "prev", "event_ms", "n_bids", "n_asks"),
    [
        (0, "SUSHIUSDT", 600859599090, 600859600917, 600859598061, 1626992741037, 3, 2),
        (1, "AKROUSDT", 600859599831, 600859599831, 600859598737, 1626992741077, 0, 1),
        (2, "SUSHIUSDT", 600859601193, 600859602861, 600859600917, 1626992741140, 5, 1),
        (3, "KEEPUSDT", 600859601246, 600859602316, 600859581808, 1626992741142, 2, 1),
        (4, "CTKUSDT", 600859602414, 600859603788, 600859587990, 1626992741203, 1, 2),
        (5, "KEEPUSDT", 600859603268, 600859603268, 600859602316, 1626992741252, 0, 1),
    ],
)
def test_depth_update_combined_frames(
    parser: BinanceParser,
    line: int,
    symbol: str,
    first: int,
    final: int,
    prev: int,
    event_ms: int,
    n_bids: int,
    n_asks: int,
) -> None:
    event = _parse(parser, DEPTH[line])
    assert isinstance(event, DepthDiff)
    assert (event.exchange, event.symbol) == (Exchange.BINANCE, symbol)
    assert (event.first_update_id, event.final_update_id, event.prev_update_id) == (
        first,
        final,
        prev,
    )
    assert (event.event_time_ms, event.recv_ms, event.depth) == (event_ms, RECV, None)
    assert (len(event.bids), len(event.asks)) == (n_bids, n_asks)


def test_depth_update_levels_are_floats_and_zero_is_zero(parser: BinanceParser) -> None:
    event = _parse(parser, DEPTH[0])
    assert event.bids == [(7.504, 813.0), (7.609, 0.0), (7.611, 2.0)]
    assert event.asks == [(7.615, 1563.0), (7.622, 3284.0)]


def test_raw_frame_equals_combined_frame(parser: BinanceParser) -> None:
    assert _parse(parser, DEPTH[0]["data"]) == _parse(parser, DEPTH[0])


@pytest.mark.parametrize(
    ("stream", "partial"),
    [
        ("sushiusdt@depth5", True),
        ("sushiusdt@depth10@500ms", True),
        ("sushiusdt@depth20@100ms", True),
        ("sushiusdt@depth", False),
        ("sushiusdt@depth@100ms", False),
        ("sushiusdt@depth@500ms", False),
        ("sushiusdt@bookTicker", False),
    ],
)
def test_partial_depth_stream_becomes_ws_snapshot(
    parser: BinanceParser, stream: str, partial: bool
) -> None:
    assert is_partial_depth_stream(stream) is partial
    data = DEPTH[0]["data"]
    event = _parse(parser, {"stream": stream, "data": data})
    if partial:
        assert isinstance(event, DepthSnapshot)
        assert event.source is Source.WS
        assert (event.update_id, event.event_time_ms) == (data["u"], data["E"])
        assert event.bids[2] == (7.611, 2.0)
    else:
        assert isinstance(event, DepthDiff)


def test_2026_depth_frame_with_ps_st_and_zero_written_as_0_000(parser: BinanceParser) -> None:
    # Ids as in the 2026 /public/ws recording the fixtures README describes.
    frame = {
        "e": "depthUpdate",
        "E": 1786540329176,
        "T": 1786540329170,
        "s": "BTCUSDT",
        "ps": "BTCUSDT",
        "st": 1,
        "U": 11270657214037,
        "u": 11270657223771,
        "pu": 11270657214025,
        "b": [["63970.10", "0.000"], ["63970.00", "1.250"]],
        "a": [["63972.70", "0.000"]],
    }
    event = _parse(parser, {"stream": "btcusdt@depth@100ms", "data": frame})
    assert isinstance(event, DepthDiff)
    assert event.prev_update_id == 11270657214025
    assert event.bids == [(63970.1, 0.0), (63970.0, 1.25)]
    assert event.asks[0][1] == 0.0


def test_every_replay_frame_parses(parser: BinanceParser) -> None:
    events = [parser.parse_ws_message(orjson.loads(line["raw"]), RECV) for line in REPLAY]
    assert len(events) == 255
    for [event] in events:
        assert isinstance(event, DepthDiff)
        assert event.symbol == "SUSHIUSDT"
        assert event.first_update_id <= event.final_update_id
        assert event.prev_update_id is not None


# -- bookTicker, aggTrade, markPrice -----------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "symbol", "update_id", "bid", "bid_qty", "ask", "ask_qty", "event_ms"),
    [
        (0, "SUSHIUSDT", 600859600576, 7.611, 2.0, 7.612, 297.0, 1626992741017),
        (1, "SUSHIUSDT", 600859603936, 7.611, 6.0, 7.612, 297.0, 1626992741167),
        (2, "CTKUSDT", 600859609004, 1.01, 85782.0, 1.011, 6483.0, 1626992741429),
        (3, "AKROUSDT", 600859621226, 0.01731, 57306.0, 0.01732, 72524.0, 1626992742140),
        (4, "AKROUSDT", 600859625483, 0.01731, 57306.0, 0.01732, 74607.0, 1626992742351),
    ],
)
def test_book_ticker_frames(
    parser: BinanceParser,
    line: int,
    symbol: str,
    update_id: int,
    bid: float,
    bid_qty: float,
    ask: float,
    ask_qty: float,
    event_ms: int,
) -> None:
    event = _parse(parser, BOOK_TICKERS[line])
    assert event == BookTicker(
        Exchange.BINANCE, symbol, bid, bid_qty, ask, ask_qty, update_id, event_ms, RECV
    )


@pytest.mark.parametrize(
    ("line", "symbol", "price", "qty", "side", "trade_ms"),
    [
        (0, "CTKUSDT", 1.011, 10.0, Side.BUY, 1626992741421),
        (1, "AKROUSDT", 0.01731, 312.0, Side.SELL, 1626992742134),  # m: buyer is maker
        (2, "CTKUSDT", 1.011, 10.0, Side.BUY, 1626992742715),
        (3, "SUSHIUSDT", 7.612, 297.0, Side.BUY, 1626992744108),
        (4, "CTKUSDT", 1.011, 10.0, Side.BUY, 1626992744109),
    ],
)
def test_agg_trade_frames(
    parser: BinanceParser,
    line: int,
    symbol: str,
    price: float,
    qty: float,
    side: Side,
    trade_ms: int,
) -> None:
    event = _parse(parser, AGG_TRADES[line])
    assert event == Trade(Exchange.BINANCE, symbol, price, qty, side, trade_ms, RECV)


def test_mark_price_update(parser: BinanceParser) -> None:
    expected = FundingRate(
        exchange=Exchange.BINANCE,
        symbol="BTCUSDT",
        rate=0.00038167,
        interval_hours=None,
        next_funding_ms=1562306400000,
        mark_price=11794.15,
        index_price=11784.62659091,
        event_time_ms=1562305380000,
        recv_ms=RECV,
    )
    assert parser.parse_ws_message(MARK_PRICE, RECV) == [expected]
    assert parser.parse_ws_message({"stream": "btcusdt@markPrice", "data": MARK_PRICE}, RECV) == [
        expected
    ]


def test_mark_price_array_skips_delivery_contracts(parser: BinanceParser) -> None:
    eth = {**MARK_PRICE, "s": "ETHUSDT", "r": "-0.0001"}
    delivery = {**MARK_PRICE, "s": "BTCUSDT_260925", "r": "", "T": 0}
    events = parser.parse_ws_message([MARK_PRICE, delivery, eth], RECV)
    assert [(e.symbol, e.rate) for e in events if isinstance(e, FundingRate)] == [
        ("BTCUSDT", 0.00038167),
        ("ETHUSDT", -0.0001),
    ]
    combined = {"stream": "!markPrice@arr@1s", "data": [MARK_PRICE, delivery, eth]}
    assert parser.parse_ws_message(combined, RECV) == events


# -- replies and ignored streams -------------------------------------------------------------


def test_subscribe_ack_and_unknown_events_with_new_fields(parser: BinanceParser) -> None:
    ack, *mini_tickers = MARKET_ACK
    assert parser.parse_ws_message(ack, RECV) == [
        SubscriptionAck(Exchange.BINANCE, True, "1", "", None, RECV)
    ]
    for frame in mini_tickers:
        assert frame["st"] == 1  # the 2026 field is there, and ignored
        assert parser.parse_ws_message(frame, RECV) == []


def test_subscribe_error_reply(parser: BinanceParser) -> None:
    frame = {"error": {"code": 2, "msg": "Invalid request: unknown variable"}, "id": 7}
    assert parser.parse_ws_message(frame, RECV) == [
        SubscriptionAck(
            Exchange.BINANCE, False, "7", "Invalid request: unknown variable", None, RECV
        )
    ]


@pytest.mark.parametrize(
    "frame",
    [
        {"stream": "btcusdt@kline_1m", "data": {"e": "kline", "E": 1, "s": "BTCUSDT", "k": {}}},
        {"e": "24hrTicker", "E": 1, "s": "BTCUSDT"},
        {"e": "forceOrder", "E": 1, "o": {}},
    ],
)
def test_unknown_event_types_are_ignored(parser: BinanceParser, frame: dict[str, Any]) -> None:
    assert parser.parse_ws_message(frame, RECV) == []


# -- REST ----------------------------------------------------------------------------------------


def test_rest_depth_snapshot(parser: BinanceParser) -> None:
    [event] = parser.parse_rest(DEPTH_ENDPOINT, REST_DEPTH, RECV)
    assert isinstance(event, DepthSnapshot)
    assert (event.exchange, event.symbol, event.source) == (
        Exchange.BINANCE,
        "SUSHIUSDT",
        Source.REST,
    )
    assert (event.update_id, event.event_time_ms, event.recv_ms) == (
        600859605926,
        1626992741264,
        RECV,
    )
    assert event.bids[:2] == [(7.611, 6.0), (7.608, 161.0)]
    assert event.asks[-1] == (9.122, 2.0)
    assert (len(event.bids), len(event.asks)) == (len(REST_DEPTH["bids"]), len(REST_DEPTH["asks"]))


def test_rest_depth_time_falls_back_to_transaction_time(parser: BinanceParser) -> None:
    body = {k: v for k, v in REST_DEPTH.items() if k != "E"}
    [event] = parser.parse_rest("https://fapi.binance.com" + DEPTH_ENDPOINT, body, RECV)
    assert isinstance(event, DepthSnapshot)
    assert event.event_time_ms == 1626992741261


def test_rest_premium_index_object_and_list(parser: BinanceParser) -> None:
    expected = FundingRate(
        Exchange.BINANCE,
        "BTCUSDT",
        0.00038246,
        None,
        1597392000000,
        11793.63104562,
        11781.8049597,
        1597370495002,
        RECV,
    )
    endpoint = "/fapi/v1/premiumIndex?symbol=BTCUSDT"
    assert parser.parse_rest(endpoint, PREMIUM_INDEX, RECV) == [expected]
    delivery = {**PREMIUM_INDEX, "symbol": "BTCUSDT_260925", "lastFundingRate": ""}
    assert parser.parse_rest("/fapi/v1/premiumIndex", [PREMIUM_INDEX, delivery], RECV) == [expected]


def test_rest_funding_info(parser: BinanceParser) -> None:
    body = [
        {
            "symbol": "BLZUSDT",
            "adjustedFundingRateCap": "0.02500000",
            "adjustedFundingRateFloor": "-0.02500000",
            "fundingIntervalHours": 4,
            "disclaimer": False,
        },
        {"symbol": "ZROUSDT", "fundingIntervalHours": 1, "disclaimer": False},
    ]
    assert parser.parse_rest("/fapi/v1/fundingInfo", body, RECV) == [
        FundingInterval(Exchange.BINANCE, "BLZUSDT", 4.0, RECV),
        FundingInterval(Exchange.BINANCE, "ZROUSDT", 1.0, RECV),
    ]


def test_rest_book_ticker_object_and_list(parser: BinanceParser) -> None:
    expected = BookTicker(
        Exchange.BINANCE, "BTCUSDT", 4.0, 431.0, 4.000002, 9.0, 1027024, 1589437530011, RECV
    )
    endpoint = "/fapi/v1/ticker/bookTicker"
    assert parser.parse_rest(endpoint + "?symbol=BTCUSDT", REST_BOOK_TICKER, RECV) == [expected]
    no_id = {k: v for k, v in REST_BOOK_TICKER.items() if k != "lastUpdateId"}
    events = parser.parse_rest(endpoint, [REST_BOOK_TICKER, no_id], RECV)
    assert events[0] == expected
    assert isinstance(events[1], BookTicker)
    assert events[1].update_id is None


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("/fapi/v1/exchangeInfo", load_json("binance_usdm_rest_exchangeInfo_2021-07-21.json")),
        ("/fapi/v1/ticker/24hr?symbol=BTCUSDT", {"symbol": "BTCUSDT", "lastPrice": "1"}),
        ("/fapi/v1/time", {"serverTime": 1626858243909}),
    ],
)
def test_other_rest_paths_give_no_events(
    parser: BinanceParser, endpoint: str, body: dict[str, Any]
) -> None:
    assert parser.parse_rest(endpoint, body, RECV) == []


@pytest.mark.parametrize("body", ERROR_BODIES)
def test_error_bodies_raise_frame_error(parser: BinanceParser, body: dict[str, Any]) -> None:
    with pytest.raises(FrameError) as info:
        parser.parse_rest(DEPTH_ENDPOINT, body, RECV)
    assert not isinstance(info.value, MalformedFrame)
    assert str(body["code"]) in info.value.reason
    assert body["msg"] in info.value.reason
    assert info.value.exchange == "binance"


# -- malformed input -----------------------------------------------------------------------------


_MISSING = object()


def _depth_with(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(DEPTH[0]["data"])
    for key, value in changes.items():
        if value is _MISSING:
            del data[key]
        else:
            data[key] = value
    return {"stream": "sushiusdt@depth@100ms", "data": data}


@pytest.mark.parametrize(
    ("frame", "needle"),
    [
        ("not a dict", "must be an object"),
        (None, "must be an object"),
        (42, "must be an object"),
        ({"stream": "sushiusdt@depth@100ms"}, "'data'"),
        ({"stream": "sushiusdt@depth@100ms", "data": "x"}, "'data'"),
        ({"stream": 5, "data": {}}, "'stream'"),
        ({"s": "BTCUSDT"}, "'e'"),
        (_depth_with(U=_MISSING), "'U'"),
        (_depth_with(pu=_MISSING), "'pu'"),
        (_depth_with(b=_MISSING), "'b'"),
        (_depth_with(u="600859600917x"), "integers"),
        (_depth_with(E=None), "integers"),
        (_depth_with(s=None), "'s'"),
        (_depth_with(b={"7.5": "1"}), "'b'"),
        (_depth_with(b=[["abc", "1"]]), "'b' level 0"),
        (_depth_with(a=[["7.6", "1"], ["7.7"]]), "'a' level 1"),
        (_depth_with(a=[["7.6", "1", "2"]]), "'a' level 0"),
        (_depth_with(a=[None]), "'a' level 0"),
        (_depth_with(b=[["-7.5", "1"]]), "invalid price"),
        (_depth_with(b=[["0", "1"]]), "invalid price"),
        (_depth_with(b=[["NaN", "1"]]), "invalid price"),
        (_depth_with(b=[["7.5", "inf"]]), "invalid size"),
        (_depth_with(b=[["7.5", "-1"]]), "invalid size"),
        (_depth_with(a=[["7.5", "nan"]]), "invalid size"),
        ({**BOOK_TICKERS[0]["data"], "b": "x"}, "'b'"),
        ({**BOOK_TICKERS[0]["data"], "A": "-2"}, "'A'"),
        ({k: v for k, v in BOOK_TICKERS[0]["data"].items() if k != "u"}, "'u'"),
        ({**AGG_TRADES[0]["data"], "m": "false"}, "'m'"),
        ({**AGG_TRADES[0]["data"], "p": None}, "'p'"),
        ({**MARK_PRICE, "r": "abc"}, "'r'"),
        ({**MARK_PRICE, "r": "nan"}, "'r'"),
        ([MARK_PRICE, "x"], "markPriceUpdate"),
        ({"error": "boom", "id": 1}, "'error'"),
        ({"id": 1}, "'result'"),
    ],
)
def test_malformed_ws_frames(parser: BinanceParser, frame: Any, needle: str) -> None:
    with pytest.raises(MalformedFrame) as info:
        parser.parse_ws_message(frame, RECV)
    assert needle in info.value.reason
    assert info.value.exchange == "binance"
    # Nothing is lost: the next good frame parses as if the bad one never came.
    assert _parse(parser, DEPTH[2]).final_update_id == 600859602861


@pytest.mark.parametrize(
    ("endpoint", "body", "needle"),
    [
        (DEPTH_ENDPOINT, [], "must be an object"),
        (DEPTH_ENDPOINT, {"bids": [], "asks": [], "E": 1}, "'lastUpdateId'"),
        (DEPTH_ENDPOINT, {**REST_DEPTH, "asks": [["1", "x"]]}, "'asks' level 0"),
        (DEPTH_ENDPOINT, {**REST_DEPTH, "lastUpdateId": 1.5}, "'lastUpdateId'"),
        ("/fapi/v1/depth?limit=5", REST_DEPTH, "'symbol'"),
        ("/fapi/v1/premiumIndex", [PREMIUM_INDEX, 3], "expected an object"),
        ("/fapi/v1/premiumIndex", {**PREMIUM_INDEX, "markPrice": "-1"}, "'markPrice'"),
        ("/fapi/v1/fundingInfo", [{"symbol": "X", "fundingIntervalHours": 0}], "> 0"),
        ("/fapi/v1/fundingInfo", [{"symbol": "X"}], "'fundingIntervalHours'"),
        ("/fapi/v1/ticker/bookTicker", {**REST_BOOK_TICKER, "askQty": "x"}, "'askQty'"),
    ],
)
def test_malformed_rest_bodies(
    parser: BinanceParser, endpoint: str, body: Any, needle: str
) -> None:
    with pytest.raises(MalformedFrame) as info:
        parser.parse_rest(endpoint, body, RECV)
    assert needle in info.value.reason
    [event] = parser.parse_rest(DEPTH_ENDPOINT, REST_DEPTH, RECV)
    assert isinstance(event, DepthSnapshot)


def test_malformed_frame_keeps_the_frame(parser: BinanceParser) -> None:
    frame = _depth_with(b=[["x", "1"]])
    with pytest.raises(MalformedFrame) as info:
        parser.parse_ws_message(frame, RECV)
    assert info.value.frame is frame
    assert isinstance(info.value.__cause__, ValueError)
