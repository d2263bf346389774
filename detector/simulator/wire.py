"""Wire frames of Binance USDⓈ-M and Bybit v5 linear, built field for field like the real ones.

Key order follows the recorded frames in ``tests/fixtures`` (and EXCHANGES.md where no frame is
recorded), so a generated frame and a real one differ only in their values.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from detector.models import Exchange
from detector.simulator.book import LevelTicks
from detector.simulator.instruments import InstrumentSpec

BINANCE_PUBLIC_STREAM = "/public/stream"  # depth, bookTicker (routed path since 2026-04-23)
BINANCE_MARKET_STREAM = "/market/stream"  # markPrice, aggTrade
BYBIT_LINEAR = "/v5/public/linear"
BINANCE_DEPTH_LIMIT = 1000
BYBIT_BOOK_DEPTH = 50

Json = dict[str, Any]


class Malformation(StrEnum):
    """How a malformed frame is broken."""

    TRUNCATED_JSON = "truncated_json"  # the frame's JSON text cut in half, recorded as a string
    BAD_PRICE = "bad_price"  # a book frame whose first price is not a number


@dataclass(frozen=True, slots=True)
class Frame:
    """One message an exchange sends: ``data`` is the payload exactly as on the wire."""

    ts: int  # exchange send time, ms
    exchange: Exchange
    endpoint: str  # WebSocket path: "/public/stream", "/market/stream", "/v5/public/linear"
    channel: str  # Binance stream name or Bybit topic
    data: Any
    malformed: bool = False  # scripted fault: a client cannot use this frame


@dataclass(frozen=True, slots=True)
class Disconnect:
    """The server drops every connection of ``exchange`` at ``ts``; it accepts new ones from
    ``until_ms``. Frames in between are published to nobody (books and ids go on)."""

    ts: int
    exchange: Exchange
    until_ms: int


Output = Frame | Disconnect


def malformed(frame: Json, kind: Malformation) -> Any:
    """``frame`` broken as scripted: its JSON text cut in half, or its first price garbled."""
    if kind is Malformation.TRUNCATED_JSON:
        text = dumps(frame)
        return text[: len(text) // 2]
    levels = frame["data"]["b"] or frame["data"]["a"]
    price = levels[0][0]
    levels[0][0] = price[:-2] + "x" + price[-1]
    return frame


def dumps(payload: Any) -> str:
    """Compact JSON text, as the exchanges send it."""
    return orjson.dumps(payload).decode()


# -- names -----------------------------------------------------------------------------------
def depth_stream(symbol: str) -> str:
    return f"{symbol.lower()}@depth@100ms"


def book_ticker_stream(symbol: str) -> str:
    return f"{symbol.lower()}@bookTicker"


def mark_price_stream(symbol: str) -> str:
    return f"{symbol.lower()}@markPrice"


def agg_trade_stream(symbol: str) -> str:
    return f"{symbol.lower()}@aggTrade"


def binance_depth_path(symbol: str, limit: int = BINANCE_DEPTH_LIMIT) -> str:
    """The REST request a client sends for a snapshot, as recorded in ``Record.endpoint``."""
    return f"/fapi/v1/depth?symbol={symbol}&limit={limit}"


def orderbook_topic(symbol: str) -> str:
    return f"orderbook.{BYBIT_BOOK_DEPTH}.{symbol}"


def tickers_topic(symbol: str) -> str:
    return f"tickers.{symbol}"


def trade_topic(symbol: str) -> str:
    return f"publicTrade.{symbol}"


def wire_levels(spec: InstrumentSpec, levels: list[LevelTicks]) -> list[list[str]]:
    """Levels as ``[["price", "size"], ...]`` strings in the instrument's precision."""
    price, qty = spec.price_str, spec.qty_str
    return [[price(tick), qty(lots)] for tick, lots in levels]


# -- Binance ---------------------------------------------------------------------------------
def binance_depth(
    symbol: str,
    event_ms: int,
    trade_ms: int,
    first_id: int,
    final_id: int,
    prev_final_id: int,
    bids: list[list[str]],
    asks: list[list[str]],
) -> Json:
    """A combined-stream ``depthUpdate`` frame (futures ids: U, u, pu)."""
    data = {
        "e": "depthUpdate",
        "E": event_ms,
        "T": trade_ms,
        "s": symbol,
        "U": first_id,
        "u": final_id,
        "pu": prev_final_id,
        "b": bids,
        "a": asks,
    }
    return {"stream": depth_stream(symbol), "data": data}


def binance_book_ticker(
    symbol: str,
    update_id: int,
    bid: LevelTicks,
    ask: LevelTicks,
    spec: InstrumentSpec,
    trade_ms: int,
    event_ms: int,
) -> Json:
    data = {
        "e": "bookTicker",
        "u": update_id,
        "s": symbol,
        "b": spec.price_str(bid[0]),
        "B": spec.qty_str(bid[1]),
        "a": spec.price_str(ask[0]),
        "A": spec.qty_str(ask[1]),
        "T": trade_ms,
        "E": event_ms,
    }
    return {"stream": book_ticker_stream(symbol), "data": data}


def binance_agg_trade(
    symbol: str,
    event_ms: int,
    agg_id: int,
    price: str,
    qty: str,
    first_trade: int,
    last_trade: int,
    trade_ms: int,
    buyer_is_maker: bool,
) -> Json:
    data = {
        "e": "aggTrade",
        "E": event_ms,
        "a": agg_id,
        "s": symbol,
        "p": price,
        "q": qty,
        "f": first_trade,
        "l": last_trade,
        "T": trade_ms,
        "m": buyer_is_maker,
    }
    return {"stream": agg_trade_stream(symbol), "data": data}


def binance_mark_price(
    symbol: str, event_ms: int, mark: str, index: str, settle: str, rate: str, next_funding_ms: int
) -> Json:
    data = {
        "e": "markPriceUpdate",
        "E": event_ms,
        "s": symbol,
        "p": mark,
        "i": index,
        "P": settle,
        "r": rate,
        "T": next_funding_ms,
    }
    return {"stream": mark_price_stream(symbol), "data": data}


def binance_rest_depth(
    last_update_id: int, event_ms: int, trade_ms: int, bids: list[list[str]], asks: list[list[str]]
) -> Json:
    """The body of ``GET /fapi/v1/depth``."""
    return {
        "lastUpdateId": last_update_id,
        "E": event_ms,
        "T": trade_ms,
        "bids": bids,
        "asks": asks,
    }


# -- Bybit -----------------------------------------------------------------------------------
def bybit_orderbook(
    symbol: str,
    kind: str,
    ts: int,
    bids: list[list[str]],
    asks: list[list[str]],
    update_id: int,
    seq: int,
    cts: int,
) -> Json:
    """An ``orderbook.50`` snapshot or delta (``kind``)."""
    data = {"s": symbol, "b": bids, "a": asks, "u": update_id, "seq": seq}
    return {"topic": orderbook_topic(symbol), "type": kind, "ts": ts, "data": data, "cts": cts}


def bybit_tickers(symbol: str, kind: str, fields: Json, cs: int, ts: int) -> Json:
    """A ``tickers`` snapshot (every field) or delta (``symbol`` plus the changed fields)."""
    return {"topic": tickers_topic(symbol), "type": kind, "data": fields, "cs": cs, "ts": ts}


def bybit_trade(
    symbol: str,
    trade_ms: int,
    side: str,
    size: str,
    price: str,
    tick_direction: str,
    trade_id: str,
    seq: int,
) -> Json:
    """One element of a ``publicTrade`` frame's ``data`` list."""
    return {
        "T": trade_ms,
        "s": symbol,
        "S": side,
        "v": size,
        "p": price,
        "L": tick_direction,
        "i": trade_id,
        "BT": False,
        "RPI": False,
        "seq": seq,
    }


def bybit_trades(symbol: str, ts: int, trades: list[Json]) -> Json:
    return {"topic": trade_topic(symbol), "type": "snapshot", "ts": ts, "data": trades}


def bybit_ack(op: str, req_id: str, conn_id: str) -> Json:
    """The answer to a successful ``subscribe``/``unsubscribe`` request."""
    return {"success": True, "ret_msg": "", "conn_id": conn_id, "req_id": req_id, "op": op}


def bybit_pong(conn_id: str) -> Json:
    """The answer to ``{"op":"ping"}``."""
    return {"success": True, "ret_msg": "pong", "conn_id": conn_id, "op": "ping"}


TICKER_FIELDS: tuple[str, ...] = (
    "symbol",
    "tickDirection",
    "price24hPcnt",
    "lastPrice",
    "prevPrice24h",
    "highPrice24h",
    "lowPrice24h",
    "prevPrice1h",
    "markPrice",
    "indexPrice",
    "openInterest",
    "openInterestValue",
    "turnover24h",
    "volume24h",
    "fundingIntervalHour",
    "fundingCap",
    "singleOpenInterest",
    "singleOpenInterestValue",
    "nextFundingTime",
    "fundingRate",
    "bid1Price",
    "bid1Size",
    "ask1Price",
    "ask1Size",
    "preOpenPrice",
    "preQty",
    "curPreListingPhase",
)
"""The keys of a 2026 ``tickers`` snapshot, in the order Bybit sends them."""


def ticker_delta(previous: Json, current: Json) -> Json:
    """``symbol`` plus the fields of ``current`` that differ from ``previous`` (a delta's data)."""
    delta: Json = {"symbol": current["symbol"]}
    for key, value in current.items():
        if previous.get(key) != value:
            delta[key] = value
    return delta
