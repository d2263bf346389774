"""Binance USDⓈ-M futures: stream names; WebSocket and REST payloads in, events out (sans-I/O)."""

from __future__ import annotations

from typing import Any

import msgspec

from detector.errors import FrameError, MalformedFrame
from detector.models import (
    BookTicker,
    DepthDiff,
    DepthSnapshot,
    Event,
    Exchange,
    FundingInterval,
    FundingRate,
    Side,
    Source,
    SubscriptionAck,
    Trade,
)
from detector.venues._fields import Fields, parse_levels, require, split_endpoint, to_price, to_size
from detector.venues._typed import REFUSED, decode_json, levels
from detector.venues.base import VenueParser

EXCHANGE = Exchange.BINANCE

# Partial book depth streams (<sym>@depth5 / @depth10 / @depth20, optionally @100ms / @500ms):
# each frame is the whole top N, not a diff.
_PARTIAL_DEPTH = frozenset({"depth5", "depth10", "depth20"})


# Stream names: ``<symbol in lower case>@<kind>[@<option>]``.


def depth_stream(symbol: str, speed: str = "100ms") -> str:
    """Diff depth: ``btcusdt@depth@100ms`` (``speed`` "100ms", "250ms" or "500ms")."""
    if speed == "250ms":  # the default speed has no suffix
        return f"{symbol.lower()}@depth"
    return f"{symbol.lower()}@depth@{speed}"


def book_ticker_stream(symbol: str) -> str:
    """Best bid and ask in real time: ``btcusdt@bookTicker``."""
    return f"{symbol.lower()}@bookTicker"


def agg_trade_stream(symbol: str) -> str:
    """Aggregate trades: ``btcusdt@aggTrade`` (``market`` path)."""
    return f"{symbol.lower()}@aggTrade"


def mark_price_stream(symbol: str, every_second: bool = False) -> str:
    """Mark price and funding rate, every 3 s or every 1 s: ``btcusdt@markPrice[@1s]``."""
    return f"{symbol.lower()}@markPrice" + ("@1s" if every_second else "")


def is_partial_depth_stream(stream: str) -> bool:
    """True for ``btcusdt@depth20@100ms`` and the like; False for the diff ``@depth@100ms``."""
    parts = stream.split("@", 2)
    return len(parts) > 1 and parts[1] in _PARTIAL_DEPTH


# Typed decoding of the hot frames (see detector.venues._typed): combined-stream frames of the
# diff or partial depth, bookTicker and aggTrade streams.


class _Depth(msgspec.Struct, tag_field="e", tag="depthUpdate"):
    E: int
    s: str
    U: int
    u: int
    pu: int
    b: msgspec.Raw
    a: msgspec.Raw


class _Ticker(msgspec.Struct, tag_field="e", tag="bookTicker"):
    s: str
    u: int
    b: str
    B: str
    a: str
    A: str
    E: int | msgspec.UnsetType = msgspec.UNSET
    T: int | msgspec.UnsetType = msgspec.UNSET


class _AggTrade(msgspec.Struct, tag_field="e", tag="aggTrade"):
    s: str
    p: str
    q: str
    m: bool
    T: int


class _Combined(msgspec.Struct):
    stream: str
    data: _Depth | _Ticker | _AggTrade


_COMBINED = msgspec.json.Decoder(_Combined)


def decode_typed(payload: bytes | msgspec.Raw) -> object:
    """Only the typed decoding of :meth:`BinanceParser.parse_ws_raw` (for ``arbwatch bench``'s
    floor); raises one of :data:`~detector.venues._typed.REFUSED` for a frame it does not take."""
    frame = _COMBINED.decode(payload)
    if isinstance(frame.data, _Depth):
        return frame, levels(frame.data.b), levels(frame.data.a)
    return frame


class BinanceParser(VenueParser):
    """Turns Binance USDⓈ-M frames into events. Stateless: one instance may serve every stream."""

    __slots__ = ()

    def parse_ws_message(self, data: Any, recv_ms: int) -> list[Event]:
        """A decoded WebSocket frame (combined ``{"stream","data"}`` or raw) → events.

        Partial-depth frames (``@depth20``) are told from diffs by their stream name only: a raw
        ``/ws/<sym>@depth20`` frame looks like a diff, so take partial depth via combined streams.
        """
        if type(data) is list:  # raw !markPrice@arr
            return self._mark_prices(data, recv_ms, data)
        if type(data) is not dict:
            raise MalformedFrame(EXCHANGE, f"frame must be an object, got {_kind(data)}", data)
        stream = data.get("stream")
        if stream is None:
            if "e" not in data and "id" in data:
                return [_ack(data, recv_ms)]
            return self._event(data, recv_ms, False, data)
        payload = require(data, "data", EXCHANGE, "combined stream frame", data)
        if type(stream) is not str:
            raise MalformedFrame(EXCHANGE, f"field 'stream' must be a string, got {stream!r}", data)
        if type(payload) is list:  # combined !markPrice@arr
            return self._mark_prices(payload, recv_ms, data)
        if type(payload) is not dict:
            raise MalformedFrame(
                EXCHANGE, f"field 'data' must be an object, got {_kind(payload)}", data
            )
        return self._event(payload, recv_ms, is_partial_depth_stream(stream), data)

    def parse_ws_raw(self, payload: bytes | msgspec.Raw, recv_ms: int) -> list[Event]:
        """A WebSocket frame as received: its depth, bookTicker and aggTrade frames are decoded
        typed, every other one as :meth:`parse_ws_message` does, with the same events."""
        try:
            frame = _COMBINED.decode(payload)
            d = frame.data
            if isinstance(d, _Depth):
                bids, asks = levels(d.b), levels(d.a)
                if is_partial_depth_stream(frame.stream):
                    return [DepthSnapshot(EXCHANGE, d.s, bids, asks, d.u, d.E, recv_ms, Source.WS)]
                return [DepthDiff(EXCHANGE, d.s, bids, asks, d.U, d.u, d.pu, d.E, recv_ms)]
            if isinstance(d, _Ticker):
                return [_typed_ticker(d, recv_ms)]
            return [_typed_trade(d, recv_ms)]
        except (*REFUSED, FrameError):
            # Another message, or one the dict path must name the fault of.
            return self.parse_ws_message(decode_json(payload, EXCHANGE), recv_ms)

    def parse_rest(self, endpoint: str, data: Any, recv_ms: int) -> list[Event]:
        """A decoded REST body of ``endpoint`` (path with query string) → events."""
        if type(data) is dict and "code" in data and "msg" in data:
            # Errors come as HTTP 4xx with {"code": -1121, "msg": "Invalid symbol."}.
            raise FrameError(EXCHANGE, f"error {data['code']}: {data['msg']}", data)
        path, query = split_endpoint(endpoint)
        if path.endswith("/fapi/v1/depth"):
            return [self._rest_depth(query, data, recv_ms)]
        if path.endswith("/fapi/v1/premiumIndex"):
            return self._premium_index(data, recv_ms)
        if path.endswith("/fapi/v1/fundingInfo"):
            return self._funding_info(data, recv_ms)
        if path.endswith("/fapi/v1/ticker/bookTicker"):
            return [self._rest_book_ticker(item, recv_ms, data) for item in _objects(data)]
        return []

    # WebSocket events

    def _event(self, d: dict[str, Any], recv_ms: int, partial: bool, frame: Any) -> list[Event]:
        kind = require(d, "e", EXCHANGE, "event", frame)
        if kind == "depthUpdate":
            return [self._depth(d, recv_ms, partial, frame)]
        if kind == "bookTicker":
            return [self._book_ticker(d, recv_ms, frame)]
        if kind == "markPriceUpdate":
            return self._mark_prices([d], recv_ms, frame)
        if kind == "aggTrade":
            return [self._agg_trade(d, recv_ms, frame)]
        return []  # miniTicker, kline, ...: not ours to read

    def _depth(
        self, d: dict[str, Any], recv_ms: int, partial: bool, frame: Any
    ) -> DepthSnapshot | DepthDiff:
        try:
            symbol = d["s"]
            first = d["U"]
            final = d["u"]
            prev = d["pu"]
            event_ms = d["E"]
            raw_bids = d["b"]
            raw_asks = d["a"]
        except KeyError as exc:
            raise MalformedFrame(
                EXCHANGE, f"depthUpdate: missing field {exc.args[0]!r}", frame
            ) from None
        if not (
            type(first) is int
            and type(final) is int
            and type(prev) is int
            and type(event_ms) is int
        ):
            raise MalformedFrame(EXCHANGE, "depthUpdate: U, u, pu and E must be integers", frame)
        if type(symbol) is not str:
            raise MalformedFrame(EXCHANGE, f"field 's' must be a symbol, got {symbol!r}", frame)
        bids = parse_levels(raw_bids, EXCHANGE, "b", frame)
        asks = parse_levels(raw_asks, EXCHANGE, "a", frame)
        if partial:
            # A partial-depth frame is the whole top N: it replaces the book.
            return DepthSnapshot(EXCHANGE, symbol, bids, asks, final, event_ms, recv_ms, Source.WS)
        return DepthDiff(EXCHANGE, symbol, bids, asks, first, final, prev, event_ms, recv_ms)

    def _book_ticker(self, d: dict[str, Any], recv_ms: int, frame: Any) -> BookTicker:
        f = Fields(d, EXCHANGE, "bookTicker", frame)
        return BookTicker(
            exchange=EXCHANGE,
            symbol=f.symbol("s"),
            bid_price=f.price("b"),
            bid_qty=f.size("B"),
            ask_price=f.price("a"),
            ask_qty=f.size("A"),
            update_id=f.integer("u"),
            event_time_ms=_time(f, "E", "T"),
            recv_ms=recv_ms,
        )

    def _mark_prices(self, items: list[Any], recv_ms: int, frame: Any) -> list[Event]:
        events: list[Event] = []
        for d in items:
            if type(d) is not dict:
                raise MalformedFrame(EXCHANGE, f"markPriceUpdate must be an object: {d!r}", frame)
            f = Fields(d, EXCHANGE, "markPriceUpdate", frame)
            if f.value("r") == "":
                continue  # delivery contracts in !markPrice@arr have no funding ("r": "")
            events.append(
                FundingRate(
                    exchange=EXCHANGE,
                    symbol=f.symbol("s"),
                    rate=f.rate("r"),
                    interval_hours=None,  # the frame does not say; /fapi/v1/fundingInfo does
                    next_funding_ms=f.integer("T"),
                    mark_price=f.price("p"),
                    index_price=f.price("i"),
                    event_time_ms=f.integer("E"),
                    recv_ms=recv_ms,
                )
            )
        return events

    def _agg_trade(self, d: dict[str, Any], recv_ms: int, frame: Any) -> Trade:
        f = Fields(d, EXCHANGE, "aggTrade", frame)
        maker = f.value("m")
        if type(maker) is not bool:
            raise MalformedFrame(EXCHANGE, f"field 'm' must be a boolean, got {maker!r}", frame)
        return Trade(
            exchange=EXCHANGE,
            symbol=f.symbol("s"),
            price=f.price("p"),
            qty=f.size("q"),
            # m: the buyer was the maker, so the taker sold.
            side=Side.SELL if maker else Side.BUY,
            trade_time_ms=f.integer("T"),
            recv_ms=recv_ms,
        )

    # REST bodies

    def _rest_depth(self, query: dict[str, str], data: Any, recv_ms: int) -> DepthSnapshot:
        if type(data) is not dict:
            raise MalformedFrame(EXCHANGE, f"depth body must be an object, got {_kind(data)}", data)
        symbol = query.get("symbol")
        if not symbol:
            raise MalformedFrame(
                EXCHANGE, "depth endpoint lacks the 'symbol' query parameter", data
            )
        f = Fields(data, EXCHANGE, "depth", data)
        return DepthSnapshot(
            exchange=EXCHANGE,
            symbol=symbol.upper(),  # the body carries no symbol: it is the request's
            bids=parse_levels(f.value("bids"), EXCHANGE, "bids", data),
            asks=parse_levels(f.value("asks"), EXCHANGE, "asks", data),
            update_id=f.integer("lastUpdateId"),
            event_time_ms=_time(f, "E", "T"),
            recv_ms=recv_ms,
            source=Source.REST,
        )

    def _premium_index(self, data: Any, recv_ms: int) -> list[Event]:
        events: list[Event] = []
        for d in _objects(data):
            f = Fields(d, EXCHANGE, "premiumIndex", data)
            if f.value("lastFundingRate") == "":
                continue  # delivery contracts: no funding
            events.append(
                FundingRate(
                    exchange=EXCHANGE,
                    symbol=f.symbol("symbol"),
                    rate=f.rate("lastFundingRate"),
                    interval_hours=None,
                    next_funding_ms=f.integer("nextFundingTime"),
                    mark_price=f.price("markPrice"),
                    index_price=f.price("indexPrice"),
                    event_time_ms=f.integer("time"),
                    recv_ms=recv_ms,
                )
            )
        return events

    def _funding_info(self, data: Any, recv_ms: int) -> list[Event]:
        events: list[Event] = []
        for d in _objects(data):
            f = Fields(d, EXCHANGE, "fundingInfo", data)
            hours = f.rate("fundingIntervalHours")
            if hours <= 0:
                raise MalformedFrame(
                    EXCHANGE, f"fundingIntervalHours must be > 0, got {hours}", data
                )
            events.append(FundingInterval(EXCHANGE, f.symbol("symbol"), hours, recv_ms))
        return events

    def _rest_book_ticker(self, d: dict[str, Any], recv_ms: int, frame: Any) -> BookTicker:
        f = Fields(d, EXCHANGE, "ticker/bookTicker", frame)
        return BookTicker(
            exchange=EXCHANGE,
            symbol=f.symbol("symbol"),
            bid_price=f.price("bidPrice"),
            bid_qty=f.size("bidQty"),
            ask_price=f.price("askPrice"),
            ask_qty=f.size("askQty"),
            update_id=f.integer("lastUpdateId") if "lastUpdateId" in d else None,
            event_time_ms=f.integer("time"),
            recv_ms=recv_ms,
        )


def _typed_ticker(d: _Ticker, recv_ms: int) -> BookTicker:
    """:meth:`BinanceParser._book_ticker` of a typed frame."""
    event_ms = d.E if isinstance(d.E, int) else d.T
    if not isinstance(event_ms, int) or not d.s:
        raise msgspec.ValidationError("bookTicker: no E nor T, or no symbol")
    return BookTicker(
        EXCHANGE,
        d.s,
        to_price(d.b, "b", EXCHANGE, None),
        to_size(d.B, "B", EXCHANGE, None),
        to_price(d.a, "a", EXCHANGE, None),
        to_size(d.A, "A", EXCHANGE, None),
        d.u,
        event_ms,
        recv_ms,
    )


def _typed_trade(d: _AggTrade, recv_ms: int) -> Trade:
    """:meth:`BinanceParser._agg_trade` of a typed frame (m: the buyer was the maker)."""
    if not d.s:
        raise msgspec.ValidationError("aggTrade: no symbol")
    price, qty = to_price(d.p, "p", EXCHANGE, None), to_size(d.q, "q", EXCHANGE, None)
    return Trade(EXCHANGE, d.s, price, qty, Side.SELL if d.m else Side.BUY, d.T, recv_ms)


def _ack(d: dict[str, Any], recv_ms: int) -> SubscriptionAck:
    """``{"result": null, "id": N}`` → success; ``{"error": {"code", "msg"}, "id": N}`` → not."""
    request_id = d["id"]
    rid = None if request_id is None else str(request_id)
    if "error" in d:
        error = d["error"]
        if type(error) is not dict:
            raise MalformedFrame(EXCHANGE, f"field 'error' must be an object, got {error!r}", d)
        message = str(error.get("msg", ""))
        return SubscriptionAck(EXCHANGE, False, rid, message, None, recv_ms)
    if "result" not in d:
        raise MalformedFrame(EXCHANGE, "reply: missing field 'result'", d)
    return SubscriptionAck(EXCHANGE, True, rid, "", None, recv_ms)


def _time(f: Fields, key: str, fallback: str) -> int:
    """The event time ``key``, else ``fallback`` (the transaction time)."""
    return f.integer(key if key in f.obj else fallback)


def _objects(data: Any) -> list[dict[str, Any]]:
    """A REST body that is one object or a list of them (``?symbol=`` given or not)."""
    items = data if type(data) is list else [data]
    for item in items:
        if type(item) is not dict:
            raise MalformedFrame(EXCHANGE, f"expected an object, got {_kind(item)}", data)
    return items


def _kind(value: Any) -> str:
    return type(value).__name__
