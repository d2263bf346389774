"""Generated frames look like the recorded real ones: same keys, same order, same value types."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from detector.models import Exchange, Source
from detector.recording import Record
from detector.simulator.instruments import format_trimmed, profile
from tests.conftest import load_json, load_jsonl

BINANCE, BYBIT = Exchange.BINANCE, Exchange.BYBIT


def shape(value: Any) -> Any:
    """Keys in order and leaf types; a list is represented by its first element."""
    if isinstance(value, dict):
        return [(key, shape(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def find(records: list[Record], match: Callable[[Any], bool]) -> Any:
    """The payload of the first record whose payload matches."""
    return next(r.data for r in records if isinstance(r.data, dict) and match(r.data))


def binance_event(kind: str) -> Callable[[Any], bool]:
    def match(data: Any) -> bool:
        inner = data.get("data")
        return (
            isinstance(inner, dict)
            and inner.get("e") == kind
            and all(inner.get(k, 1) for k in "ba")
        )

    return match


def bybit_topic(prefix: str, kind: str) -> Callable[[Any], bool]:
    def match(data: Any) -> bool:
        if not data.get("topic", "").startswith(prefix) or data.get("type") != kind:
            return False
        inner = data["data"]
        return not isinstance(inner, dict) or "b" not in inner or bool(inner["b"] and inner["a"])

    return match


@pytest.mark.parametrize(
    ("fixture", "line", "match"),
    [
        ("binance_usdm_ws_depth100ms_combined_2021-07-22.jsonl", 0, binance_event("depthUpdate")),
        ("binance_usdm_ws_bookTicker_combined_2021-07-22.jsonl", 0, binance_event("bookTicker")),
        ("binance_usdm_ws_aggTrade_combined_2021-07-22.jsonl", 0, binance_event("aggTrade")),
        (
            "bybit_v5_linear_orderbook50_BTCUSDT_snapshot_delta_2026-08-12.jsonl",
            0,
            bybit_topic("orderbook.50.", "snapshot"),
        ),
        (
            "bybit_v5_linear_orderbook50_BTCUSDT_snapshot_delta_2026-08-12.jsonl",
            1,
            bybit_topic("orderbook.50.", "delta"),
        ),
        (
            "bybit_v5_linear_tickers_BTCUSDT_snapshot_delta_2026-08-12.jsonl",
            0,
            bybit_topic("tickers.", "snapshot"),
        ),
        (
            "bybit_v5_linear_subscribe_ack_and_publicTrade_BTCUSDT_2026-08-12.jsonl",
            0,
            lambda d: d.get("op") == "subscribe",
        ),
        (
            "bybit_v5_linear_subscribe_ack_and_publicTrade_BTCUSDT_2026-08-12.jsonl",
            1,
            bybit_topic("publicTrade.", "snapshot"),
        ),
    ],
)
def test_frames_have_the_shape_of_real_frames(
    showcase: list[Record], fixture: str, line: int, match: Callable[[Any], bool]
) -> None:
    real = load_jsonl(fixture)[line]
    assert shape(find(showcase, match)) == shape(real)


def test_rest_depth_body_has_the_shape_of_the_real_one(showcase: list[Record]) -> None:
    body = next(r.data for r in showcase if r.source is Source.REST)
    real = load_json("binance_usdm_rest_depth_SUSHIUSDT_limit1000_2021-07-22.json")
    assert shape(body) == shape(real)


def test_mark_price_and_pong_follow_the_documented_fields(showcase: list[Record]) -> None:
    mark = find(showcase, binance_event("markPriceUpdate"))
    assert mark["stream"].endswith("@markPrice")
    assert list(mark["data"]) == ["e", "E", "s", "p", "i", "P", "r", "T"]
    assert re.fullmatch(r"\d+\.\d{8}", mark["data"]["p"])
    assert re.fullmatch(r"0\.\d{8}", mark["data"]["r"])
    pong = find(showcase, lambda d: d.get("ret_msg") == "pong")
    assert list(pong) == ["success", "ret_msg", "conn_id", "op"]
    assert pong["op"] == "ping"


def test_ticker_deltas_are_ordered_subsets_of_the_snapshot(showcase: list[Record]) -> None:
    real = load_jsonl("bybit_v5_linear_tickers_BTCUSDT_snapshot_delta_2026-08-12.jsonl")
    order = list(real[0]["data"])
    deltas = [r.data for r in showcase if bybit_topic("tickers.", "delta")(r.data)]
    assert deltas
    for delta in deltas:
        assert list(delta) == list(real[1])
        keys = list(delta["data"])
        assert keys[0] == "symbol"
        assert len(keys) > 1
        assert keys == sorted(keys, key=order.index)
        assert all(isinstance(v, str) for v in delta["data"].values())


@pytest.mark.parametrize(
    ("exchange", "symbol", "price", "qty", "zero"),
    [
        (BINANCE, "BTCUSDT", r"\d+\.\d{2}", r"\d+\.\d{3}", "0.000"),
        (BINANCE, "ETHUSDT", r"\d+\.\d{2}", r"\d+\.\d{3}", "0.000"),
        (BINANCE, "SOLUSDT", r"\d+\.\d{4}", r"\d+", "0"),
        (BYBIT, "BTCUSDT", r"\d+\.\d{2}", r"\d+\.\d{3}", "0"),
        (BYBIT, "ETHUSDT", r"\d+\.\d{2}", r"\d+\.\d{2}", "0"),
        (BYBIT, "SOLUSDT", r"\d+\.\d{3}", r"\d+\.\d", "0"),
    ],
)
def test_levels_use_each_instruments_precision_and_tick(
    three_symbols: list[Record], exchange: Exchange, symbol: str, price: str, qty: str, zero: str
) -> None:
    tick = profile(symbol).spec(exchange).tick
    channel = f"{symbol.lower()}@depth@100ms" if exchange is BINANCE else f"orderbook.50.{symbol}"
    levels: list[list[str]] = []
    for record in three_symbols:
        data = record.data
        if record.exchange is not exchange or not isinstance(data, dict):
            continue
        if record.source is Source.REST:
            if f"symbol={symbol}&" in record.endpoint:
                levels += data["bids"] + data["asks"]
        elif data.get("stream", data.get("topic")) == channel:
            levels += data["data"]["b"] + data["data"]["a"]
    deletions = [q for _, q in levels if float(q) == 0]
    assert len(levels) > 500
    assert deletions
    assert set(deletions) == {zero}
    for p, q in levels:
        assert re.fullmatch(price, p), p
        assert q == zero or re.fullmatch(qty, q), q
        assert abs(float(p) / tick - round(float(p) / tick)) < 1e-6, p


def test_every_stream_is_on_its_routed_endpoint(showcase: list[Record]) -> None:
    endpoints = {
        "depth@100ms": "/public/stream",
        "bookTicker": "/public/stream",
        "markPrice": "/market/stream",
        "aggTrade": "/market/stream",
    }
    for record in showcase:
        if record.source is Source.REST:
            assert re.fullmatch(r"/fapi/v1/depth\?symbol=[A-Z]+USDT&limit=1000", record.endpoint)
        elif record.exchange is BYBIT:
            assert record.endpoint == "/v5/public/linear"
        elif isinstance(record.data, dict):
            suffix = record.data["stream"].split("@", 1)[1]
            assert record.endpoint == endpoints[suffix]


def test_records_are_in_receive_order_after_their_exchange_time(showcase: list[Record]) -> None:
    times = [r.ts for r in showcase]
    assert times == sorted(times)
    for record in showcase:
        data = record.data
        if not isinstance(data, dict):
            continue
        sent = data.get("ts") if record.exchange is BYBIT else (data.get("data") or data).get("E")
        if sent is not None:
            assert sent <= record.ts


@pytest.mark.parametrize(
    ("value", "dp", "text"),
    [(0.0001, 7, "0.0001"), (0.0000544, 7, "0.0000544"), (-0.00506, 6, "-0.00506"), (0.0, 6, "0")],
)
def test_bybit_decimals_drop_trailing_zeros(value: float, dp: int, text: str) -> None:
    assert format_trimmed(value, dp) == text


def test_unknown_symbols_are_refused() -> None:
    with pytest.raises(ValueError, match="DOGEUSDT"):
        profile("DOGEUSDT")
