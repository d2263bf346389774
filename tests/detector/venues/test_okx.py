"""OKX v5 venue: arg names; instruments, recorded frames in, events out in base coin; bad frames."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from detector.errors import FrameError, MalformedFrame, UnknownInstrument
from detector.models import (
    BookTicker,
    DepthDiff,
    DepthSnapshot,
    Event,
    Exchange,
    FundingRate,
    Pong,
    Side,
    Source,
    SubscriptionAck,
    Trade,
)
from detector.venues.instruments import parse_okx_instruments
from detector.venues.okx import (
    INSTRUMENTS_ENDPOINT,
    OkxParser,
    arg_key,
    books_arg,
    checksum,
    funding_arg,
    inst_id,
    key_arg,
    symbol_of,
    tickers_arg,
    trades_arg,
)
from tests.conftest import load_jsonl

RECV = 1_800_000_000_000
BOOKS5 = load_jsonl("okx_v5_books5_BTC-USDT-SWAP_2026-08-12.jsonl")
TICKERS = load_jsonl("okx_v5_tickers_BTC-USDT-SWAP_2026-08-12.jsonl")
BOOKS_2022 = load_jsonl("okx_v5_books_UNI-USD-SWAP_2022-05-13.jsonl")
BTC = "BTC-USDT-SWAP"


def swap(inst: str, ct_val: str, **fields: str) -> dict[str, str]:
    """One item of GET /api/v5/public/instruments?instType=SWAP with the fields we read; values
    as OKX documents them (docs-v5 "Get instruments": BTC-USDT-SWAP ctVal 0.01 BTC)."""
    base = inst.split("-")[0]
    item = {
        "instType": "SWAP",
        "instId": inst,
        "instFamily": inst.removesuffix("-SWAP"),
        "uly": inst.removesuffix("-SWAP"),
        "ctVal": ct_val,
        "ctMult": "1",
        "ctValCcy": base,
        "ctType": "linear",
        "settleCcy": "USDT",
        "state": "live",
        "tickSz": "0.1",
        "lotSz": "0.01",
        "minSz": "0.01",
        "listTime": "1611916828000",
    }
    item.update(fields)
    return item


INSTRUMENTS = {
    "code": "0",
    "msg": "",
    "data": [
        swap(BTC, "0.01"),
        swap("ETH-USDT-SWAP", "0.1", tickSz="0.01", lotSz="0.01"),
        swap("PEPE-USDT-SWAP", "10000000", tickSz="0.0000000001", lotSz="0.1"),
        # Made up, to reach the non-power-of-ten path: half a coin per contract.
        swap("HALF-USDT-SWAP", "5", ctMult="0.1"),
        swap("UNI-USD-SWAP", "10", ctValCcy="USD", ctType="inverse", settleCcy="UNI"),
        swap("SOL-USDT-SWAP", "1", state="suspend"),
        # An announced listing: OKX leaves the other fields "" until shortly before listTime.
        swap("NEW-USDT-SWAP", "", ctMult="", tickSz="", lotSz="", state="preopen"),
    ],
}


@pytest.fixture
def parser() -> OkxParser:
    p = OkxParser()
    assert p.parse_rest(INSTRUMENTS_ENDPOINT, INSTRUMENTS, RECV) == []
    return p


def _parse(parser: OkxParser, frame: Any) -> Any:
    events = parser.parse_ws_message(frame, RECV)
    assert len(events) == 1
    return events[0]


def coins(sz: str, ct: str) -> float:
    """The exact base quantity: ``float(Decimal(sz) * Decimal(ct))``."""
    return float(Decimal(sz) * Decimal(ct))


def book_frame(action: str, seq: int, prev: int, bids: Any = (), asks: Any = ()) -> Any:
    """A ``books`` frame in OKX's shape (docs-v5 "WS / Order book channel" push example)."""
    return {
        "arg": {"channel": "books", "instId": BTC},
        "action": action,
        "data": [
            {
                "asks": [list(a) for a in asks],
                "bids": [list(b) for b in bids],
                "ts": "1597026383085",
                "checksum": 0,
                "prevSeqId": prev,
                "seqId": seq,
            }
        ],
    }


# -- names ---------------------------------------------------------------------------------------


def test_names() -> None:
    assert inst_id("btcusdt") == BTC
    assert inst_id(BTC) == BTC
    assert symbol_of(BTC) == "BTCUSDT"
    assert symbol_of("BTC-USD-SWAP") is None
    assert symbol_of("BTC-USDT") is None
    assert books_arg("BTCUSDT") == {"channel": "books", "instId": BTC}
    assert [f(BTC)["channel"] for f in (tickers_arg, trades_arg, funding_arg)] == [
        "tickers",
        "trades",
        "funding-rate",
    ]
    assert arg_key(books_arg(BTC)) == "books:BTC-USDT-SWAP"
    assert key_arg("funding-rate:BTC-USDT-SWAP") == funding_arg(BTC)


# -- instruments ---------------------------------------------------------------------------------


def test_instruments_list_every_item_and_keep_live_usdt_linear_swaps() -> None:
    listed = {i.symbol: i for i in parse_okx_instruments(INSTRUMENTS)}
    assert sorted(s for s, i in listed.items() if i.tradable) == [
        BTC,
        "ETH-USDT-SWAP",
        "HALF-USDT-SWAP",
        "PEPE-USDT-SWAP",
    ]
    btc = listed[BTC]
    assert (btc.exchange, btc.base, btc.quote, btc.status, btc.contract_type) == (
        Exchange.OKX,
        "BTC",
        "USDT",
        "live",
        "linear",
    )
    assert (btc.tick_size, btc.contract_size, btc.step_size) == (0.1, 0.01, 0.0001)
    assert listed["HALF-USDT-SWAP"].contract_size == 0.5
    assert (listed["UNI-USD-SWAP"].tradable, listed["UNI-USD-SWAP"].contract_type) == (
        False,
        "inverse",
    )
    assert (listed["SOL-USDT-SWAP"].tradable, listed["SOL-USDT-SWAP"].status) == (False, "suspend")
    new = listed["NEW-USDT-SWAP"]
    assert (new.tradable, new.status, new.contract_size) == (False, "preopen", 1.0)


def test_parser_learns_contract_sizes(parser: OkxParser) -> None:
    assert parser.contract_size(BTC) == 0.01
    assert parser.contract_size("PEPE-USDT-SWAP") == 10_000_000
    for untradable in ("UNI-USD-SWAP", "SOL-USDT-SWAP", "NEW-USDT-SWAP", "XRP-USDT-SWAP"):
        assert parser.contract_size(untradable) is None


def test_a_full_list_replaces_and_a_list_of_one_updates(parser: OkxParser) -> None:
    one = {"code": "0", "msg": "", "data": [swap("SOL-USDT-SWAP", "1")]}
    parser.parse_rest(f"{INSTRUMENTS_ENDPOINT}&instId=SOL-USDT-SWAP", one, RECV)
    assert (parser.contract_size("SOL-USDT-SWAP"), parser.contract_size(BTC)) == (1.0, 0.01)
    suspended = {"code": "0", "msg": "", "data": [swap(BTC, "0.01", state="suspend")]}
    parser.parse_rest(f"{INSTRUMENTS_ENDPOINT}&instId={BTC}", suspended, RECV)
    assert parser.contract_size(BTC) is None
    parser.parse_rest(INSTRUMENTS_ENDPOINT, one, RECV)  # the whole list: only SOL now
    assert (parser.contract_size("SOL-USDT-SWAP"), parser.contract_size("ETH-USDT-SWAP")) == (
        1.0,
        None,
    )


# -- real frames ---------------------------------------------------------------------------------


def test_books5_real_frames(parser: OkxParser) -> None:
    ack = _parse(parser, BOOKS5[0])
    assert ack == SubscriptionAck(Exchange.OKX, True, None, "", "books5:BTC-USDT-SWAP", RECV)
    first = _parse(parser, BOOKS5[1])
    assert isinstance(first, DepthSnapshot)
    assert (first.exchange, first.symbol, first.source, first.depth) == (
        Exchange.OKX,
        BTC,
        Source.WS,
        5,
    )
    assert (first.update_id, first.event_time_ms, first.recv_ms) == (
        333794734980,
        1786541241006,
        RECV,
    )
    # 790.41 contracts of 0.01 BTC are 7.9041 BTC; 421.93 are 4.2193 exactly, where the float
    # product 421.93 * 0.01 is 4.2193000000000005.
    assert first.asks[0] == (63921.5, 7.9041)
    assert first.bids[0] == (63921.4, 4.2193)
    assert first.bids[1:3] == [(63921.3, 0.0025), (63920.7, 0.0034)]
    second = _parse(parser, BOOKS5[2])
    assert second.update_id == 333794734996
    assert second.bids[-1] == (63920.0, 0.0024)


@pytest.mark.parametrize("line", [1, 2])
def test_every_size_is_the_exact_base_quantity(parser: OkxParser, line: int) -> None:
    raw = BOOKS5[line]["data"][0]
    event = _parse(parser, BOOKS5[line])
    assert event.asks == [(float(p), coins(sz, "0.01")) for p, sz, _, _ in raw["asks"]]
    assert event.bids == [(float(p), coins(sz, "0.01")) for p, sz, _, _ in raw["bids"]]


def test_tickers_real_frames(parser: OkxParser) -> None:
    assert _parse(parser, TICKERS[0]).topic == "tickers:BTC-USDT-SWAP"
    ticker = _parse(parser, TICKERS[1])
    assert ticker == BookTicker(
        Exchange.OKX, BTC, 63921.0, 7.793, 63921.1, 18.7175, None, 1786540471710, RECV
    )
    later = _parse(parser, TICKERS[2])
    # 751.56 contracts: 7.5156 BTC (751.56 * 0.01 would be 7.515599999999999).
    assert (later.bid_qty, later.ask_qty, later.event_time_ms) == (7.5156, 18.5307, 1786540471871)


def test_2022_books_recording_is_refused_coin_margined(parser: OkxParser) -> None:
    # UNI-USD-SWAP is inverse (ctVal in USD): no base quantity is sz * ctVal, so it is never
    # learnt, and each of its book frames says why. The ack in between reads as any ack.
    for frame in BOOKS_2022:
        if "event" in frame:
            assert _parse(parser, frame).topic == "tickers:BTC-USD-220527"
            continue
        with pytest.raises(UnknownInstrument, match="UNI-USD-SWAP: contract size unknown") as e:
            parser.parse_ws_message(frame, RECV)
        assert (e.value.inst_id, e.value.exchange, e.value.frame) == (
            "UNI-USD-SWAP",
            Exchange.OKX,
            frame,
        )


def test_checksum_reproduces_every_checksum_of_the_2022_recording() -> None:
    # OKX's CRC32 over the best 25 levels, rebuilt from the wire strings of the snapshot and
    # each update (sz "0" deletes); the field is 0 since 2026-06-23 but these frames carry it.
    bids: dict[str, str] = {}
    asks: dict[str, str] = {}
    checked = 0
    for frame in BOOKS_2022:
        if "data" not in frame:
            continue
        data = frame["data"][0]
        if frame["action"] == "snapshot":
            bids.clear()
            asks.clear()
        for side, levels in ((bids, data["bids"]), (asks, data["asks"])):
            for price, size, _, _ in levels:
                if Decimal(size) == 0:
                    side.pop(price, None)
                else:
                    side[price] = size
        best_bids = sorted(bids.items(), key=lambda level: -Decimal(level[0]))
        best_asks = sorted(asks.items(), key=lambda level: Decimal(level[0]))
        assert checksum(best_bids, best_asks) == data["checksum"]
        checked += 1
    assert checked == 5


# -- books channel -------------------------------------------------------------------------------


def test_books_snapshot_then_update(parser: OkxParser) -> None:
    snapshot = _parse(parser, book_frame("snapshot", 10, -1, [("8476.97", "256", "0", "12")]))
    assert snapshot == DepthSnapshot(
        Exchange.OKX, BTC, [(8476.97, 2.56)], [], 10, 1597026383085, RECV, Source.WS, 400
    )
    update = _parse(
        parser,
        book_frame("update", 15, 10, [("8476.97", "0", "0", "0")], [("8477", "7", "0", "2")]),
    )
    assert update == DepthDiff(
        Exchange.OKX, BTC, [(8476.97, 0.0)], [(8477.0, 0.07)], 15, 15, 10, 1597026383085, RECV, 400
    )


@pytest.mark.parametrize(
    ("inst", "sz", "expected"),
    [
        ("ETH-USDT-SWAP", "2716.37", coins("2716.37", "0.1")),
        ("PEPE-USDT-SWAP", "12.3", 123_000_000.0),
        ("HALF-USDT-SWAP", "3.33", coins("3.33", "0.5")),  # through Decimal
        (BTC, "1e2", 1.0),  # exponent form: through Decimal too
    ],
)
def test_contract_sizes_convert_exactly(
    parser: OkxParser, inst: str, sz: str, expected: float
) -> None:
    frame = book_frame("snapshot", 1, -1, [("1.5", sz, "0", "1")])
    frame["arg"]["instId"] = inst
    assert _parse(parser, frame).bids == [(1.5, expected)]


def test_tick_by_tick_books_channels_carry_their_depth(parser: OkxParser) -> None:
    frame = book_frame("snapshot", 1, -1, [("1.5", "1", "0", "1")])
    frame["arg"]["channel"] = "books50-l2-tbt"
    assert _parse(parser, frame).depth == 50


def test_book_frames_before_the_instruments_list_are_refused() -> None:
    with pytest.raises(UnknownInstrument, match="not read yet"):
        OkxParser().parse_ws_message(BOOKS5[1], RECV)
    assert issubclass(UnknownInstrument, FrameError)  # the pipeline skips it like a bad frame


# -- bbo-tbt, trades, funding ----------------------------------------------------------------------


def test_bbo_tbt(parser: OkxParser) -> None:
    frame = {
        "arg": {"channel": "bbo-tbt", "instId": BTC},
        "data": [
            {
                "asks": [["111.06", "55154", "0", "2"]],
                "bids": [["111.05", "57745", "0", "2"]],
                "ts": "1670324386802",
                "seqId": 363996337,
            }
        ],
    }
    assert _parse(parser, frame) == BookTicker(
        Exchange.OKX, BTC, 111.05, 577.45, 111.06, 551.54, None, 1670324386802, RECV
    )
    frame["data"][0]["asks"] = []
    assert parser.parse_ws_message(frame, RECV) == []


def test_trades(parser: OkxParser) -> None:
    frame = {  # docs-v5 "WS / Trades channel" push example, on the swap
        "arg": {"channel": "trades", "instId": BTC},
        "data": [
            {
                "instId": BTC,
                "tradeId": "130639474",
                "px": "42219.9",
                "sz": "12.06",
                "side": "buy",
                "ts": "1630048897897",
                "count": "3",
                "source": "0",
                "seqId": 1234,
            },
            {"instId": BTC, "px": "42219.8", "sz": "1", "side": "sell", "ts": "1630048897898"},
        ],
    }
    assert parser.parse_ws_message(frame, RECV) == [
        Trade(Exchange.OKX, BTC, 42219.9, 0.1206, Side.BUY, 1630048897897, RECV),  # not ...0001
        Trade(Exchange.OKX, BTC, 42219.8, 0.01, Side.SELL, 1630048897898, RECV),
    ]


FUNDING = {  # docs-v5 "Get funding rate" response example (BTC-USDT-SWAP)
    "formulaType": "noRate",
    "fundingRate": "0.0000182221218054",
    "fundingTime": "1743609600000",
    "impactValue": "",
    "instId": BTC,
    "instType": "SWAP",
    "interestRate": "",
    "maxFundingRate": "0.00375",
    "method": "current_period",
    "minFundingRate": "-0.00375",
    "nextFundingRate": "",
    "nextFundingTime": "1743638400000",
    "premium": "0.0000910113652644",
    "settFundingRate": "0.0000145824401745",
    "settState": "settled",
    "ts": "1743588686291",
}


def test_funding_rate_rest_and_ws(parser: OkxParser) -> None:
    expected = FundingRate(
        Exchange.OKX,
        BTC,
        0.0000182221218054,
        8.0,
        1743609600000,
        None,
        None,
        1743588686291,
        RECV,
    )
    rest = parser.parse_rest(
        f"/api/v5/public/funding-rate?instId={BTC}",
        {"code": "0", "msg": "", "data": [FUNDING]},
        RECV,
    )
    assert rest == [expected]
    ws = {"arg": {"channel": "funding-rate", "instId": BTC}, "data": [FUNDING]}
    assert parser.parse_ws_message(ws, RECV) == [expected]


@pytest.mark.parametrize(
    ("next_time", "hours"),
    [("1743624000000", 4.0), ("1743613200000", 1.0), ("", None)],
)
def test_funding_interval_comes_from_the_frame(
    parser: OkxParser, next_time: str, hours: float | None
) -> None:
    data = dict(FUNDING, nextFundingTime=next_time)
    frame = {"arg": {"channel": "funding-rate", "instId": BTC}, "data": [data]}
    assert _parse(parser, frame).interval_hours == hours


def test_funding_needs_no_contract_size() -> None:
    frame = {"arg": {"channel": "funding-rate", "instId": BTC}, "data": [FUNDING]}
    assert _parse(OkxParser(), frame).rate == 0.0000182221218054


# -- replies -------------------------------------------------------------------------------------


def test_subscribe_ack_with_id(parser: OkxParser) -> None:
    ack = {"id": "s1", "event": "subscribe", "arg": books_arg(BTC), "connId": "a4d3ae55"}
    assert _parse(parser, ack) == SubscriptionAck(
        Exchange.OKX, True, "s1", "", "books:BTC-USDT-SWAP", RECV
    )


@pytest.mark.parametrize(
    ("reply", "request_id", "topic", "message"),
    [
        (
            {
                "event": "error",
                "code": "60018",
                "msg": "Wrong URL or channel:books,instId:BTC-USDT-SWA doesn't exist. Please use "
                "the correct URL, channel and parameters referring to API document.",
                "connId": "a4d3ae55",
            },
            None,
            "books:BTC-USDT-SWA",
            "60018: Wrong URL or channel:books,instId:BTC-USDT-SWA doesn't exist.",
        ),
        (
            {
                "id": "s7",
                "event": "error",
                "code": "60018",
                "msg": "Subscribe failed, wrong URL or channel:trades,instId:X-USDT-SWAP doesn't "
                "exist. Please use the correct URL, channel and parameters referring to API "
                "document.",
                "connId": "b2b0944b",
            },
            "s7",
            "trades:X-USDT-SWAP",
            "60018: Subscribe failed",
        ),
        (
            {  # docs-v5 failure example: the request echoed, no arg to name
                "id": "1512",
                "event": "error",
                "code": "60012",
                "msg": 'Invalid request: {"op": "subscribe", "argss":[{ "channel" : "books", '
                '"instId" : "BTC-USD-191227"}]}',
                "connId": "a4d3ae55",
            },
            "1512",
            None,
            "60012: Invalid request",
        ),
    ],
)
def test_error_replies_become_refusals(
    parser: OkxParser,
    reply: dict[str, Any],
    request_id: str | None,
    topic: str | None,
    message: str,
) -> None:
    ack = _parse(parser, reply)
    assert isinstance(ack, SubscriptionAck)
    assert (ack.success, ack.request_id, ack.topic) == (False, request_id, topic)
    assert ack.message.startswith(message)


@pytest.mark.parametrize(
    "frame",
    [
        {"event": "unsubscribe", "arg": books_arg(BTC), "connId": "d0b44253"},
        {
            "event": "notice",
            "code": "64008",
            "msg": "The connection will soon be closed for a service upgrade. Please reconnect.",
            "connId": "a4d3ae55",
        },
        {"arg": {"channel": "mark-price", "instId": BTC}, "data": [{"markPx": "1"}]},
    ],
    ids=["unsubscribe", "notice", "other-channel"],
)
def test_frames_of_no_interest(parser: OkxParser, frame: Any) -> None:
    assert parser.parse_ws_message(frame, RECV) == []


def test_pong(parser: OkxParser) -> None:
    assert parser.parse_ws_message("pong", RECV) == [Pong(Exchange.OKX, RECV)]


# -- REST ----------------------------------------------------------------------------------------


def test_rest_order_book(parser: OkxParser) -> None:
    body = {  # docs-v5 "GET / Order book" example, on the swap
        "code": "0",
        "msg": "",
        "data": [
            {
                "asks": [["41006.8", "0.6", "0", "1"]],
                "bids": [["41006.3", "30", "0", "2"]],
                "ts": "1629966436396",
                "seqId": 3235851742,
            }
        ],
    }
    events = parser.parse_rest(f"/api/v5/market/books?instId={BTC}&sz=400", body, RECV)
    assert events == [
        DepthSnapshot(
            Exchange.OKX,
            BTC,
            [(41006.3, 0.3)],
            [(41006.8, 0.006)],
            3235851742,
            1629966436396,
            RECV,
            Source.REST,
        )
    ]


def test_rest_tickers_leave_out_instruments_not_compared(parser: OkxParser) -> None:
    item = dict(TICKERS[1]["data"][0])
    other = dict(item, instId="BTC-USD-SWAP")
    body = {"code": "0", "msg": "", "data": [other, item]}
    events = parser.parse_rest("/api/v5/market/tickers?instType=SWAP", body, RECV)
    assert [(e.symbol, e.bid_qty) for e in events if isinstance(e, BookTicker)] == [(BTC, 7.793)]


def test_other_rest_paths_give_no_events(parser: OkxParser) -> None:
    body = {"code": "0", "msg": "", "data": [{"instId": BTC, "markPx": "1"}]}
    assert parser.parse_rest("/api/v5/public/mark-price?instType=SWAP", body, RECV) == []


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"code": "51001", "msg": "Instrument ID does not exist", "data": []}, "51001"),
        ({"code": "50011", "msg": "Rate limit reached.", "data": []}, "Rate limit"),
    ],
)
def test_rest_errors_raise_frame_error(parser: OkxParser, body: Any, needle: str) -> None:
    for endpoint in (INSTRUMENTS_ENDPOINT, f"/api/v5/market/books?instId={BTC}"):
        with pytest.raises(FrameError, match=needle) as caught:
            parser.parse_rest(endpoint, body, RECV)
        assert not isinstance(caught.value, MalformedFrame)
        assert caught.value.frame == body


# -- malformed -----------------------------------------------------------------------------------


def _broken(change: Any) -> Any:
    frame = copy.deepcopy(book_frame("update", 15, 10, [("8476.97", "1", "0", "1")]))
    change(frame)
    return frame


@pytest.mark.parametrize(
    ("frame", "needle"),
    [
        ([1, 2], "must be an object"),
        ("ping", "neither JSON nor pong"),
        ({"data": []}, "neither 'event' nor an 'arg'"),
        ({"arg": {"channel": "books"}, "data": []}, "bad arg"),
        (_broken(lambda f: f.pop("action")), "unknown action None"),
        (_broken(lambda f: f.update(data={"bids": []})), "list of objects"),
        (_broken(lambda f: f["data"][0].pop("prevSeqId")), "'prevSeqId'"),
        (_broken(lambda f: f["data"][0].update(seqId="15")), "'seqId' must be an integer"),
        (_broken(lambda f: f["data"][0].update(bids=[["8476.97"]])), "level 0"),
        (_broken(lambda f: f["data"][0].update(bids=[["8476.97", "-1", "0", "1"]])), "level 0"),
        (_broken(lambda f: f["data"][0].update(bids=[["0", "1", "0", "1"]])), "invalid price"),
        (_broken(lambda f: f["data"][0].update(asks=[["1", "nan", "0", "1"]])), "level 0"),
        (_broken(lambda f: f["data"][0].update(asks=[["1", 5, "0", "1"]])), "level 0"),
        (_broken(lambda f: f["data"][0].update(asks="x")), "list of levels"),
        (_broken(lambda f: f["data"][0].pop("ts")), "'ts'"),
    ],
)
def test_malformed_ws_frames(parser: OkxParser, frame: Any, needle: str) -> None:
    with pytest.raises(MalformedFrame, match=needle):
        parser.parse_ws_message(frame, RECV)


@pytest.mark.parametrize(
    ("frame", "needle"),
    [
        (
            {"arg": trades_arg(BTC), "data": [{"px": "1", "sz": "1", "side": "Buy", "ts": "1"}]},
            "'side' must be buy or sell",
        ),
        (
            {"arg": trades_arg(BTC), "data": [{"px": "1", "sz": "x", "side": "buy", "ts": "1"}]},
            "sz",
        ),
        (
            {"arg": funding_arg(BTC), "data": [dict(FUNDING, nextFundingTime="1743609600000")]},
            "not after fundingTime",
        ),
        ({"event": "error", "code": "60018", "msg": 5}, "'msg' must be a string"),
    ],
)
def test_malformed_other_frames(parser: OkxParser, frame: Any, needle: str) -> None:
    with pytest.raises(MalformedFrame, match=needle):
        parser.parse_ws_message(frame, RECV)


@pytest.mark.parametrize(
    ("endpoint", "body", "needle"),
    [
        (INSTRUMENTS_ENDPOINT, [], "must be an object"),
        (INSTRUMENTS_ENDPOINT, {"msg": ""}, "'code'"),
        (INSTRUMENTS_ENDPOINT, {"code": "0", "data": {}}, "list of objects"),
        (INSTRUMENTS_ENDPOINT, {"code": "0", "data": [{"ctVal": "1"}]}, "'instId'"),
        ("/api/v5/market/books?sz=400", {"code": "0", "data": []}, "no instId"),
    ],
)
def test_malformed_rest_bodies(parser: OkxParser, endpoint: str, body: Any, needle: str) -> None:
    with pytest.raises(MalformedFrame, match=needle):
        parser.parse_rest(endpoint, body, RECV)


def test_a_bad_frame_changes_nothing(parser: OkxParser) -> None:
    with pytest.raises(MalformedFrame):
        parser.parse_rest(INSTRUMENTS_ENDPOINT, {"code": "0", "data": [{"ctVal": "1"}]}, RECV)
    assert parser.contract_size(BTC) == 0.01


# -- replay --------------------------------------------------------------------------------------


def test_replay_is_deterministic() -> None:
    # A recording carries the instruments answer first: two fresh parsers give the same events.
    def replay() -> list[Event]:
        p = OkxParser()
        events = p.parse_rest(INSTRUMENTS_ENDPOINT, INSTRUMENTS, RECV)
        for frame in [*BOOKS5, *TICKERS]:
            events += p.parse_ws_message(frame, RECV)
        return events

    first, second = replay(), replay()
    assert first == second
    assert len(first) == 6
