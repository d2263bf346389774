"""Bybit v5 linear: topic names; WebSocket and REST payloads in, events out (pure, sans-I/O)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import msgspec

from detector.errors import FrameError, MalformedFrame
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
from detector.venues._fields import (
    Fields,
    parse_levels,
    require,
    split_endpoint,
    to_price,
    to_size,
)
from detector.venues._typed import REFUSED, decode_json, levels
from detector.venues.base import VenueParser

EXCHANGE = Exchange.BYBIT

# Public linear topics are ``<channel>.<SYMBOL>``; the book's is ``orderbook.<depth>.<SYMBOL>``.
_ORDERBOOK = "orderbook"
_TICKERS = "tickers"
_PUBLIC_TRADE = "publicTrade"

# tickers fields making up a FundingRate / a BookTicker; a delta touching any of them re-emits it.
_FUNDING_FIELDS = frozenset(
    {"fundingRate", "nextFundingTime", "fundingIntervalHour", "markPrice", "indexPrice"}
)
_BOOK_FIELDS = frozenset({"bid1Price", "bid1Size", "ask1Price", "ask1Size"})
_SIDES = {"Buy": Side.BUY, "Sell": Side.SELL}
_T = TypeVar("_T")


def orderbook_topic(symbol: str, depth: int = 50) -> str:
    """``orderbook.50.BTCUSDT`` (depth 1, 50, 200 or 1000)."""
    return f"{_ORDERBOOK}.{depth}.{symbol.upper()}"


def tickers_topic(symbol: str) -> str:
    """``tickers.BTCUSDT``: best levels, mark, funding."""
    return f"{_TICKERS}.{symbol.upper()}"


def trade_topic(symbol: str) -> str:
    """``publicTrade.BTCUSDT``."""
    return f"{_PUBLIC_TRADE}.{symbol.upper()}"


# Typed decoding of the hot frames (see detector.venues._typed): orderbook and publicTrade.


class _Frame(msgspec.Struct):
    topic: str
    type: str
    ts: int
    data: msgspec.Raw


class _Book(msgspec.Struct):
    s: str
    b: msgspec.Raw
    a: msgspec.Raw
    u: int


class _Trade(msgspec.Struct):
    T: int
    s: str
    S: str
    v: str
    p: str


_FRAME = msgspec.json.Decoder(_Frame)
_BOOK = msgspec.json.Decoder(_Book)
_TRADES = msgspec.json.Decoder(list[_Trade])


def decode_typed(payload: bytes | msgspec.Raw) -> object:
    """Only the typed decoding of :meth:`BybitParser.parse_ws_raw` (for ``arbwatch bench``'s
    floor); raises one of :data:`~detector.venues._typed.REFUSED` for a frame it does not take."""
    frame = _FRAME.decode(payload)
    channel = frame.topic.partition(".")[0]
    if channel == _ORDERBOOK:
        book = _BOOK.decode(frame.data)
        return frame, levels(book.b), levels(book.a)
    if channel == _PUBLIC_TRADE:
        return frame, _TRADES.decode(frame.data)
    raise msgspec.ValidationError(f"no typed decoding of {channel}")


class BybitParser(VenueParser):
    """Turns Bybit v5 linear frames into events; caches ``tickers`` per symbol to merge deltas."""

    __slots__ = ("_tickers",)

    def __init__(self) -> None:
        self._tickers: dict[str, dict[str, Any]] = {}  # symbol → merged tickers fields

    def parse_ws_message(self, data: Any, recv_ms: int) -> list[Event]:
        """A decoded WebSocket frame (topic data or an ``op`` reply) → events."""
        if type(data) is not dict:
            raise MalformedFrame(EXCHANGE, f"frame must be an object, got {_kind(data)}", data)
        topic = data.get("topic")
        if topic is None:
            if "op" in data:
                return _op_reply(data, recv_ms)
            raise MalformedFrame(EXCHANGE, "frame has neither 'topic' nor 'op'", data)
        if type(topic) is not str:
            raise MalformedFrame(EXCHANGE, f"field 'topic' must be a string, got {topic!r}", data)
        channel = topic.partition(".")[0]
        if channel == _ORDERBOOK:
            return [_orderbook(data, topic, recv_ms)]
        if channel == _TICKERS:
            return self._tickers_frame(data, recv_ms)
        if channel == _PUBLIC_TRADE:
            return _trades(data, recv_ms)
        return []  # kline, liquidation, ...: not ours to read

    def parse_ws_raw(self, payload: bytes | msgspec.Raw, recv_ms: int) -> list[Event]:
        """A WebSocket frame as received: orderbook and publicTrade frames are decoded typed,
        every other one as :meth:`parse_ws_message` does, with the same events."""
        try:
            frame = _FRAME.decode(payload)
            channel, _, rest = frame.topic.partition(".")
            if channel == _ORDERBOOK:
                return [_typed_orderbook(frame, rest, recv_ms)]
            if channel == _PUBLIC_TRADE:
                return _typed_trades(frame, recv_ms)
        except (*REFUSED, FrameError):
            pass
        return self.parse_ws_message(decode_json(payload, EXCHANGE), recv_ms)

    def parse_rest(self, endpoint: str, data: Any, recv_ms: int) -> list[Event]:
        """A decoded REST body of ``endpoint`` (path with query string) → events."""
        if type(data) is not dict:
            raise MalformedFrame(EXCHANGE, f"body must be an object, got {_kind(data)}", data)
        code = require(data, "retCode", EXCHANGE, "envelope", data)
        if type(code) is not int:
            raise MalformedFrame(EXCHANGE, f"field 'retCode' must be an integer: {code!r}", data)
        if code != 0:
            # Errors come with HTTP 200 and a non-zero retCode (10001 params error, 10006 ...).
            raise FrameError(EXCHANGE, f"retCode {code}: {data.get('retMsg', '')}", data)
        path, _ = split_endpoint(endpoint)
        if path.endswith("/v5/market/orderbook"):
            return [_rest_orderbook(_result(data), recv_ms, data)]
        if path.endswith("/v5/market/tickers"):
            return _rest_tickers(data, recv_ms)
        return []  # funding/history, instruments-info, ...: read by their own callers

    def _tickers_frame(self, frame: dict[str, Any], recv_ms: int) -> list[Event]:
        f = Fields(frame, EXCHANGE, "tickers", frame)
        kind = f.value("type")
        d = f.value("data")
        if type(d) is not dict:
            raise MalformedFrame(EXCHANGE, f"tickers: 'data' must be an object, got {d!r}", frame)
        symbol = Fields(d, EXCHANGE, "tickers", frame).symbol("symbol")
        event_ms = f.integer("ts")
        if kind == "snapshot":
            merged = dict(d)
            events = _ticker_events(merged, True, True, event_ms, recv_ms, frame)
        elif kind == "delta":
            # Deltas carry only the changed fields: merge them into the cached snapshot.
            cached = self._tickers.get(symbol)
            if cached is None:
                return []  # no snapshot of this symbol yet: nothing to merge into
            merged = cached | d
            events = _ticker_events(
                merged,
                not _FUNDING_FIELDS.isdisjoint(d),
                not _BOOK_FIELDS.isdisjoint(d),
                event_ms,
                recv_ms,
                frame,
            )
        else:
            raise MalformedFrame(EXCHANGE, f"tickers: unknown type {kind!r}", frame)
        # Cached only now that the frame proved valid: a bad frame changes nothing.
        self._tickers[symbol] = merged
        return events


def _op_reply(d: dict[str, Any], recv_ms: int) -> list[Event]:
    op = d["op"]
    if op == "subscribe":
        success = require(d, "success", EXCHANGE, "subscribe reply", d)
        if type(success) is not bool:
            raise MalformedFrame(EXCHANGE, f"field 'success' must be a boolean, got {success!r}", d)
        message = d.get("ret_msg") or ""
        if type(message) is not str:
            raise MalformedFrame(EXCHANGE, f"field 'ret_msg' must be a string, got {message!r}", d)
        req_id = d.get("req_id")
        request_id = None if req_id is None else str(req_id)
        return [
            SubscriptionAck(EXCHANGE, success, request_id, message, _topic_of(message), recv_ms)
        ]
    # Heartbeat: the public reply is {"op": "ping", "ret_msg": "pong"}; the private one is "pong".
    if op == "pong" or (op == "ping" and d.get("ret_msg") == "pong"):
        return [Pong(EXCHANGE, recv_ms)]
    return []  # unsubscribe, auth, ...


def _topic_of(message: str) -> str | None:
    """The refused topic named in ``"error:handler not found,topic:orderbook.500.BTCUSDT"``."""
    _, sep, tail = message.partition("topic:")
    if not sep:
        return None
    return tail.split(",", 1)[0].strip() or None


def _orderbook(frame: dict[str, Any], topic: str, recv_ms: int) -> DepthSnapshot | DepthDiff:
    try:
        kind = frame["type"]
        event_ms = frame["ts"]
        d = frame["data"]
        symbol = d["s"]
        update_id = d["u"]
        raw_bids = d["b"]
        raw_asks = d["a"]
    except KeyError as exc:
        raise MalformedFrame(EXCHANGE, f"orderbook: missing field {exc.args[0]!r}", frame) from None
    except TypeError:
        raise MalformedFrame(EXCHANGE, "orderbook: 'data' must be an object", frame) from None
    parts = topic.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        raise MalformedFrame(EXCHANGE, f"orderbook: bad topic {topic!r}", frame)
    if type(update_id) is not int or type(event_ms) is not int:
        raise MalformedFrame(EXCHANGE, "orderbook: 'u' and 'ts' must be integers", frame)
    if type(symbol) is not str:
        raise MalformedFrame(EXCHANGE, f"field 's' must be a symbol, got {symbol!r}", frame)
    bids = parse_levels(raw_bids, EXCHANGE, "b", frame)
    asks = parse_levels(raw_asks, EXCHANGE, "a", frame)
    depth = int(parts[1])
    # A snapshot replaces the book; so does a delta with u == 1 (the service restarted and the
    # frame is a full book).
    if kind == "snapshot" or (kind == "delta" and update_id == 1):
        return DepthSnapshot(
            EXCHANGE, symbol, bids, asks, update_id, event_ms, recv_ms, Source.WS, depth
        )
    if kind == "delta":
        # u grows by exactly 1 between frames of one topic; there is no separate "previous" id.
        return DepthDiff(
            EXCHANGE, symbol, bids, asks, update_id, update_id, None, event_ms, recv_ms, depth
        )
    raise MalformedFrame(EXCHANGE, f"orderbook: unknown type {kind!r}", frame)


def _typed_orderbook(frame: _Frame, rest: str, recv_ms: int) -> DepthSnapshot | DepthDiff:
    """:func:`_orderbook` of a typed frame; ``rest`` is its topic after ``orderbook.``."""
    depth_text, dot, tail = rest.partition(".")
    if not dot or "." in tail or not depth_text.isdigit():
        raise msgspec.ValidationError("orderbook: bad topic")  # the dict path names it
    d = _BOOK.decode(frame.data)
    bids, asks = levels(d.b), levels(d.a)
    kind, update_id = frame.type, d.u
    if kind == "snapshot" or (kind == "delta" and update_id == 1):
        return DepthSnapshot(
            EXCHANGE, d.s, bids, asks, update_id, frame.ts, recv_ms, Source.WS, int(depth_text)
        )
    if kind == "delta":
        return DepthDiff(
            EXCHANGE,
            d.s,
            bids,
            asks,
            update_id,
            update_id,
            None,
            frame.ts,
            recv_ms,
            int(depth_text),
        )
    raise msgspec.ValidationError("orderbook: unknown type")


def _typed_trades(frame: _Frame, recv_ms: int) -> list[Event]:
    """:func:`_trades` of a typed frame."""
    events: list[Event] = []
    for d in _TRADES.decode(frame.data):
        side = _SIDES.get(d.S)
        if side is None or not d.s:
            raise msgspec.ValidationError("publicTrade: bad side or symbol")
        price, qty = to_price(d.p, "p", EXCHANGE, None), to_size(d.v, "v", EXCHANGE, None)
        events.append(Trade(EXCHANGE, d.s, price, qty, side, d.T, recv_ms))
    return events


def _trades(frame: dict[str, Any], recv_ms: int) -> list[Event]:
    items = require(frame, "data", EXCHANGE, "publicTrade", frame)
    if type(items) is not list:
        raise MalformedFrame(EXCHANGE, "publicTrade: 'data' must be a list", frame)
    events: list[Event] = []
    for d in items:
        if type(d) is not dict:
            raise MalformedFrame(
                EXCHANGE, f"publicTrade: a trade must be an object, got {d!r}", frame
            )
        f = Fields(d, EXCHANGE, "publicTrade", frame)
        taker = f.value("S")
        side = _SIDES.get(taker) if type(taker) is str else None
        if side is None:  # S is the taker side
            raise MalformedFrame(EXCHANGE, f"field 'S' must be Buy or Sell, got {taker!r}", frame)
        events.append(
            Trade(
                exchange=EXCHANGE,
                symbol=f.symbol("s"),
                price=f.price("p"),
                qty=f.size("v"),
                side=side,
                trade_time_ms=f.integer("T"),
                recv_ms=recv_ms,
            )
        )
    return events


def _ticker_events(
    fields: Mapping[str, Any],
    funding: bool,
    book: bool,
    event_ms: int,
    recv_ms: int,
    frame: Any,
) -> list[Event]:
    """FundingRate (if ``funding`` and the rate is known) and BookTicker (if ``book`` and all four
    best-level fields are known) from merged tickers ``fields``."""
    f = Fields(fields, EXCHANGE, "tickers", frame)
    symbol = f.symbol("symbol")
    events: list[Event] = []
    if funding and _known(fields, "fundingRate"):
        hours = _optional(f, "fundingIntervalHour", Fields.rate)
        if hours is not None and hours <= 0:
            raise MalformedFrame(EXCHANGE, f"fundingIntervalHour must be > 0: {hours}", frame)
        events.append(
            FundingRate(
                exchange=EXCHANGE,
                symbol=symbol,
                rate=f.rate("fundingRate"),
                interval_hours=hours,
                next_funding_ms=_optional(f, "nextFundingTime", Fields.integer),
                mark_price=_optional(f, "markPrice", Fields.price),
                index_price=_optional(f, "indexPrice", Fields.price),
                event_time_ms=event_ms,
                recv_ms=recv_ms,
            )
        )
    if book and all(_known(fields, key) for key in _BOOK_FIELDS):
        events.append(
            BookTicker(
                exchange=EXCHANGE,
                symbol=symbol,
                bid_price=f.price("bid1Price"),
                bid_qty=f.size("bid1Size"),
                ask_price=f.price("ask1Price"),
                ask_qty=f.size("ask1Size"),
                update_id=None,
                event_time_ms=event_ms,
                recv_ms=recv_ms,
            )
        )
    return events


def _known(fields: Mapping[str, Any], key: str) -> bool:
    """Bybit writes "" for a value it does not know (preOpenPrice, a missing bid1Price)."""
    value = fields.get(key)
    return value is not None and value != ""


def _optional(f: Fields, key: str, convert: Callable[[Fields, str], _T]) -> _T | None:
    return convert(f, key) if _known(f.obj, key) else None


def _result(envelope: dict[str, Any]) -> dict[str, Any]:
    result = require(envelope, "result", EXCHANGE, "envelope", envelope)
    if type(result) is not dict:
        raise MalformedFrame(
            EXCHANGE, f"field 'result' must be an object, got {result!r}", envelope
        )
    return result


def _rest_orderbook(result: dict[str, Any], recv_ms: int, frame: Any) -> DepthSnapshot:
    f = Fields(result, EXCHANGE, "orderbook", frame)
    return DepthSnapshot(
        exchange=EXCHANGE,
        symbol=f.symbol("s"),
        bids=parse_levels(f.value("b"), EXCHANGE, "b", frame),
        asks=parse_levels(f.value("a"), EXCHANGE, "a", frame),
        update_id=f.integer("u"),
        event_time_ms=f.integer("ts"),
        recv_ms=recv_ms,
        source=Source.REST,
    )


def _rest_tickers(envelope: dict[str, Any], recv_ms: int) -> list[Event]:
    items = require(_result(envelope), "list", EXCHANGE, "tickers", envelope)
    if type(items) is not list:
        raise MalformedFrame(EXCHANGE, "tickers: 'result.list' must be a list", envelope)
    event_ms = Fields(envelope, EXCHANGE, "envelope", envelope).integer("time")
    events: list[Event] = []
    for item in items:
        if type(item) is not dict:
            raise MalformedFrame(
                EXCHANGE, f"tickers: an item must be an object, got {item!r}", envelope
            )
        events.extend(_ticker_events(item, True, True, event_ms, recv_ms, envelope))
    return events


def _kind(value: Any) -> str:
    return type(value).__name__
