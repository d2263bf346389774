"""Generated OKX frames look like the recorded real ones (same keys, order and value types) and
like OKX's documented examples where no frame is recorded; the checksum is OKX's."""

from __future__ import annotations

import re
from typing import Any

import pytest

from detector.models import Exchange, Source
from detector.recording import Record
from detector.simulator import wire_okx
from detector.simulator.market import MarketModel
from detector.simulator.state import FeedRates
from tests.conftest import load_jsonl
from tests.detector.simulator.replica import okx_checksum
from tests.detector.simulator.test_wire import shape

OKX = Exchange.OKX
REAL_BOOKS = "okx_v5_books_UNI-USD-SWAP_2022-05-13.jsonl"  # snapshot, ack, 4 updates
REAL_BOOKS5 = "okx_v5_books5_BTC-USDT-SWAP_2026-08-12.jsonl"  # ack, 2 frames
REAL_TICKERS = "okx_v5_tickers_BTC-USDT-SWAP_2026-08-12.jsonl"  # ack, 2 frames
NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d*[1-9])?")  # OKX: no trailing zeros


def okx(records: list[Record], channel: str, action: str | None = None) -> list[Any]:
    """Payloads of one channel's pushes (``action`` for ``books``)."""
    return [
        r.data
        for r in records
        if r.exchange is OKX
        and isinstance(r.data, dict)
        and r.data.get("arg", {}).get("channel") == channel
        and "data" in r.data
        and (action is None or r.data.get("action") == action)
    ]


def with_levels(frames: list[Any]) -> Any:
    return next(f for f in frames if f["data"][0]["bids"] and f["data"][0]["asks"])


def test_books_frames_have_the_shape_of_the_real_ones(okx_showcase: list[Record]) -> None:
    real = load_jsonl(REAL_BOOKS)
    for ours, theirs in (
        (okx(okx_showcase, "books", "snapshot"), real[0]),
        (
            okx(okx_showcase, "books", "update"),
            real[2],
        ),
    ):
        frame = with_levels(ours)
        # The 2022 frames predate seqId: ours add OKX's documented prevSeqId and seqId after.
        assert shape(frame["arg"]) == shape(theirs["arg"])
        assert list(frame) == list(theirs) == ["arg", "action", "data"]
        data = shape(frame["data"][0])
        assert data[:4] == shape(theirs["data"][0])
        assert data[4:] == [("prevSeqId", "int"), ("seqId", "int")]
        assert shape(frame["data"][0]["bids"]) == shape(
            load_jsonl(REAL_BOOKS5)[1]["data"][0]["bids"]
        )


def test_a_snapshot_has_prev_seq_id_minus_one_and_400_levels(okx_showcase: list[Record]) -> None:
    snapshot = okx(okx_showcase, "books", "snapshot")[0]["data"][0]
    assert snapshot["prevSeqId"] == -1 and snapshot["seqId"] > 0
    assert len(snapshot["bids"]) == len(snapshot["asks"]) == 400
    bids = [float(level[0]) for level in snapshot["bids"]]
    asks = [float(level[0]) for level in snapshot["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]


def test_keepalives_repeat_the_last_seq_id_without_levels(okx_showcase: list[Record]) -> None:
    keepalives = [
        f["data"][0]
        for f in okx(okx_showcase, "books", "update")
        if f["data"][0]["seqId"] == f["data"][0]["prevSeqId"]
    ]
    assert len(keepalives) > 20
    assert all(k["bids"] == k["asks"] == [] for k in keepalives)


def test_tickers_have_the_shape_of_the_real_ones(okx_showcase: list[Record]) -> None:
    real = load_jsonl(REAL_TICKERS)[1]
    ours = okx(okx_showcase, "tickers")
    assert len(ours) > 100
    assert shape(ours[0]) == shape(real)
    assert all(shape(t) == shape(real) for t in ours)
    btc = next(t["data"][0] for t in ours if t["arg"]["instId"] == "BTC-USDT-SWAP")
    # vol24h counts contracts, volCcy24h the coin: ctVal 0.01 apart, as in the real frame.
    ratio = float(real["data"][0]["vol24h"]) / float(real["data"][0]["volCcy24h"])
    assert float(btc["vol24h"]) / float(btc["volCcy24h"]) == pytest.approx(ratio)


def test_acks_have_the_shape_of_the_real_ones(okx_showcase: list[Record]) -> None:
    real = load_jsonl(REAL_TICKERS)[0]
    acks = [r.data for r in okx_showcase if r.exchange is OKX and "event" in r.data]
    assert acks and all(shape(a) == shape(real) for a in acks)
    assert {a["arg"]["channel"] for a in acks} == {"books", "tickers", "trades", "funding-rate"}
    assert all(re.fullmatch(r"[0-9a-f]{8}", a["connId"]) for a in acks)
    assert re.fullmatch(r"[0-9a-f]{8}", real["connId"])


def test_trades_follow_the_documented_fields(okx_showcase: list[Record]) -> None:
    trades = okx(okx_showcase, "trades")
    assert len(trades) > 100
    for frame in trades:
        (trade,) = frame["data"]
        assert list(trade) == [
            "instId",
            "tradeId",
            "px",
            "sz",
            "side",
            "ts",
            "count",
            "source",
            "seqId",
        ]
        assert trade["side"] in ("buy", "sell") and isinstance(trade["seqId"], int)
        assert all(isinstance(trade[k], str) for k in ("tradeId", "px", "sz", "ts", "count"))
    ids = [int(f["data"][0]["tradeId"]) for f in trades if f["arg"]["instId"] == "ETH-USDT-SWAP"]
    assert ids == sorted(set(ids))


def test_funding_rate_follows_the_documented_fields(okx_showcase: list[Record]) -> None:
    documented = [  # GET /api/v5/public/funding-rate and the funding-rate channel, 2025 docs
        "formulaType",
        "fundingRate",
        "fundingTime",
        "impactValue",
        "instId",
        "instType",
        "interestRate",
        "maxFundingRate",
        "method",
        "minFundingRate",
        "nextFundingRate",
        "nextFundingTime",
        "premium",
        "settFundingRate",
        "settState",
        "ts",
    ]
    pushes = [f["data"][0] for f in okx(okx_showcase, "funding-rate")]
    assert pushes and all(list(p) == documented for p in pushes)
    assert all(isinstance(v, str) for p in pushes for v in p.values())
    hours = {(int(p["nextFundingTime"]) - int(p["fundingTime"])) // 3_600_000 for p in pushes}
    assert hours == {8, 4}  # showcase's OKX FundingShift sets 4 h on BTC


def test_every_number_is_trimmed(okx_three_symbols: list[Record]) -> None:
    real = [lvl for f in load_jsonl(REAL_BOOKS5)[1:] for lvl in f["data"][0]["bids"]]
    assert all(NUMBER.fullmatch(text) for level in real for text in level)
    frames = okx(okx_three_symbols, "books")
    levels = [lvl for f in frames for side in ("bids", "asks") for lvl in f["data"][0][side]]
    assert len(levels) > 1000
    assert all(NUMBER.fullmatch(text) for level in levels for text in level)
    tickers = [f["data"][0] for f in okx(okx_three_symbols, "tickers")]
    for ticker in tickers:
        for key, value in ticker.items():
            if key not in ("instType", "instId", "ts"):
                assert NUMBER.fullmatch(value), (key, value)


@pytest.mark.parametrize("line", [0, 2, 3, 4, 5])
def test_the_checksum_is_okx_s_on_the_real_2022_books(line: int) -> None:
    """Rebuild the real session's book and compare both checksum implementations."""
    frames = [f for f in load_jsonl(REAL_BOOKS) if f.get("arg", {}).get("channel") == "books"]
    bids: dict[float, list[str]] = {}
    asks: dict[float, list[str]] = {}
    index = [0, 2, 3, 4, 5].index(line)
    for frame in frames[: index + 1]:
        data = frame["data"][0]
        if frame["action"] == "snapshot":
            bids, asks = {}, {}
        for book, side in ((bids, data["bids"]), (asks, data["asks"])):
            for level in side:
                if float(level[1]) == 0:
                    book.pop(float(level[0]), None)
                else:
                    book[float(level[0])] = level
    top_bids = [bids[p] for p in sorted(bids, reverse=True)]
    top_asks = [asks[p] for p in sorted(asks)]
    expected = frames[index]["data"][0]["checksum"]
    assert wire_okx.checksum(top_bids, top_asks) == expected
    assert okx_checksum(top_bids, top_asks) == expected


def test_checksums_can_be_zero_as_since_2026() -> None:
    model = MarketModel(
        ["BTCUSDT"],
        1,
        1_786_540_800_000,
        rates=FeedRates(okx_checksums=False),
        venues=tuple(Exchange),
    )
    frames = [o.data for o in model.advance(1_786_540_802_000) if o.channel.startswith("books:")]
    assert frames and {f["data"][0]["checksum"] for f in frames} == {0}
    assert model.okx_books_snapshot("BTCUSDT")["data"][0]["checksum"] == 0


def test_bbo_tbt_is_the_top_of_the_book() -> None:
    # Not in the recordings (the recorder does not subscribe it): the frames of a model.
    model = MarketModel(["ETHUSDT"], 1, 1_786_540_800_000, venues=tuple(Exchange))
    frames = [o.data for o in model.advance(1_786_540_802_000) if o.channel.startswith("bbo-tbt:")]
    assert len(frames) > 5
    for frame in frames:
        (data,) = frame["data"]
        assert list(data) == ["asks", "bids", "ts", "seqId"]
        assert len(data["asks"]) == len(data["bids"]) == 1
        assert float(data["bids"][0][0]) < float(data["asks"][0][0])


def test_instruments_list_the_usdt_swaps_and_what_to_filter_out(okx_showcase: list[Record]) -> None:
    body = next(r.data for r in okx_showcase if r.exchange is OKX and r.source is Source.REST)
    assert list(body) == ["code", "data", "msg"] and body["code"] == "0"
    items = {i["instId"]: i for i in body["data"]}
    usdt = [i for i in items.values() if i["settleCcy"] == "USDT" and i["state"] == "live"]
    assert sorted(i["instId"] for i in usdt) == ["BTC-USDT-SWAP", "ETH-USDT-SWAP"]
    for inst_id, ct_val, tick in (
        ("BTC-USDT-SWAP", "0.01", "0.1"),
        ("ETH-USDT-SWAP", "0.1", "0.01"),
    ):
        item = items[inst_id]
        assert (item["ctVal"], item["ctMult"], item["tickSz"], item["lotSz"]) == (
            ct_val,
            "1",
            tick,
            "0.01",
        )
        assert (item["ctType"], item["ctValCcy"], item["instType"]) == (
            "linear",
            inst_id[:3],
            "SWAP",
        )
        assert item["uly"] == item["instFamily"] == inst_id.removesuffix("-SWAP")
    assert items["BTC-USD-SWAP"]["ctType"] == "inverse"
    assert items["BTC-USDC-SWAP"]["settleCcy"] == "USDC"
    assert items["NEWCOIN-USDT-SWAP"]["state"] == "preopen"


DOCUMENTED_INSTRUMENT = [  # GET /api/v5/public/instruments response example, OKX docs 2026
    "alias",
    "auctionEndTime",
    "baseCcy",
    "category",
    "ctMult",
    "ctType",
    "ctVal",
    "ctValCcy",
    "contTdSwTime",
    "expTime",
    "futureSettlement",
    "groupId",
    "instFamily",
    "instId",
    "instType",
    "lever",
    "listTime",
    "lotSz",
    "maxIcebergSz",
    "maxLmtAmt",
    "maxLmtSz",
    "maxMktAmt",
    "maxMktSz",
    "maxStopSz",
    "maxTriggerSz",
    "maxTwapSz",
    "minSz",
    "optType",
    "openType",
    "preMktSwTime",
    "quoteCcy",
    "tradeQuoteCcyList",
    "settleCcy",
    "state",
    "ruleType",
    "stk",
    "tickSz",
    "uly",
    "instIdCode",
    "instCategory",
    "upcChg",
]


def test_instruments_carry_the_documented_fields(okx_showcase: list[Record]) -> None:
    body = next(r.data for r in okx_showcase if r.exchange is OKX and r.source is Source.REST)
    for item in body["data"]:
        assert list(item) == DOCUMENTED_INSTRUMENT
        assert isinstance(item["futureSettlement"], bool) and isinstance(item["instIdCode"], int)
        assert item["tradeQuoteCcyList"] == item["upcChg"] == []
