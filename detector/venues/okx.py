"""OKX v5 public swaps: channel args; WebSocket and REST payloads in, events out (pure, sans-I/O).

**Units.** OKX writes swap sizes in contracts. Every size leaves this module in the base coin:
``base = sz * ctVal * ctMult``, with the contract size learnt from the instruments list
(``parse_rest("/api/v5/public/instruments?instType=SWAP", body, recv_ms)``), so that a recording
that carries that answer replays exactly. Only live, USDT-settled linear swaps are learnt; a size
frame of any other instrument raises :class:`~detector.errors.UnknownInstrument`. The product is
exact: ``790.41`` contracts of 0.01 BTC is ``float("7.9041")``, not ``790.41 * 0.01``.

**Symbols.** Events carry OKX's ``instId`` (``BTC-USDT-SWAP``), as the Bybit parser carries
Bybit's names; :class:`~detector.symbols.SymbolMap` renames them to canonical symbols.

**Books** (``books``: a ``snapshot`` then ``update``s, 400 levels). ``seqId`` and ``prevSeqId``
map onto our ids: a snapshot's ``seqId`` is :attr:`DepthSnapshot.update_id`; an update's ``seqId``
is both :attr:`DepthDiff.first_update_id` and :attr:`DepthDiff.final_update_id` (OKX has no first
id) and its ``prevSeqId`` is :attr:`DepthDiff.prev_update_id`. The continuity rule lives in
:class:`detector.book.OkxBook`. ``checksum`` is deprecated (always 0 since 2026-06-23, per OKX's
notice) and not read; :func:`checksum` computes the old CRC32 for recordings that carry one.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeGuard

import msgspec

from detector.errors import FrameError, MalformedFrame, UnknownInstrument, caused_by
from detector.models import (
    BookTicker,
    DepthDiff,
    DepthSnapshot,
    Event,
    Exchange,
    FundingRate,
    Level,
    Pong,
    Side,
    Source,
    SubscriptionAck,
    Trade,
)
from detector.venues._fields import Fields, require, split_endpoint
from detector.venues._typed import decode_json
from detector.venues.base import VenueParser
from detector.venues.instruments import (
    OKX_INSTRUMENTS_PATH,
    Instrument,
    parse_okx_instruments,
)

EXCHANGE = Exchange.OKX

BOOKS = "books"  # 400 levels: snapshot, then updates every 100 ms
BOOKS5 = "books5"  # top 5, every frame a whole snapshot
BBO_TBT = "bbo-tbt"  # top of book, tick by tick
TICKERS = "tickers"
TRADES = "trades"
FUNDING_RATE = "funding-rate"
# Channels of incremental books and their depth; the tick-by-tick ones need VIP4 (error 64003).
BOOKS_DEPTH = 400
"""Levels per side of the ``books`` channel, the book the pipeline keeps."""
_INCREMENTAL = {BOOKS: BOOKS_DEPTH, "books-l2-tbt": BOOKS_DEPTH, "books50-l2-tbt": 50}

INSTRUMENTS_ENDPOINT = f"{OKX_INSTRUMENTS_PATH}?instType=SWAP"
_BOOKS_PATH = "/api/v5/market/books"
_FUNDING_PATH = "/api/v5/public/funding-rate"
_TICKER_PATHS = ("/api/v5/market/ticker", "/api/v5/market/tickers")
_SWAP_SUFFIX = "-USDT-SWAP"
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_HOUR_MS = 3_600_000
_INF = math.inf
# 60018: "Wrong URL or channel:books,instId:X doesn't exist. ..." names the refused arg.
_REFUSED_ARG = re.compile(r"channel:\s*([A-Za-z0-9-]+)\s*,\s*instId:\s*([A-Za-z0-9-]+)")
CHECKSUM_LEVELS = 25


# Names


def inst_id(symbol: str) -> str:
    """``BTCUSDT`` → ``BTC-USDT-SWAP`` (an instId passes through). The coin is taken as it is:
    unit bundles such as Binance's ``1000PEPEUSDT`` are :func:`detector.symbols.okx_listing`'s."""
    symbol = symbol.upper()
    if symbol.endswith(_SWAP_SUFFIX):
        return symbol
    return f"{symbol.removesuffix('USDT')}{_SWAP_SUFFIX}"


def symbol_of(instrument: str) -> str | None:
    """``BTC-USDT-SWAP`` → ``BTCUSDT``; None for anything but a USDT swap."""
    if not instrument.endswith(_SWAP_SUFFIX) or instrument.count("-") != 2:
        return None
    return instrument.removesuffix(_SWAP_SUFFIX) + "USDT"


def channel_arg(channel: str, instrument: str) -> dict[str, str]:
    """A subscribe arg: ``{"channel": "books", "instId": "BTC-USDT-SWAP"}``."""
    return {"channel": channel, "instId": inst_id(instrument)}


def books_arg(instrument: str) -> dict[str, str]:
    return channel_arg(BOOKS, instrument)


def tickers_arg(instrument: str) -> dict[str, str]:
    return channel_arg(TICKERS, instrument)


def trades_arg(instrument: str) -> dict[str, str]:
    return channel_arg(TRADES, instrument)


def funding_arg(instrument: str) -> dict[str, str]:
    return channel_arg(FUNDING_RATE, instrument)


def arg_key(arg: Mapping[str, Any]) -> str:
    """One string per subscription: ``books:BTC-USDT-SWAP`` (the topic of acks and refusals)."""
    return f"{arg['channel']}:{arg['instId']}"


def key_arg(key: str) -> dict[str, str]:
    """The subscribe arg of :func:`arg_key`'s string."""
    channel, _, instrument = key.partition(":")
    return {"channel": channel, "instId": instrument}


def checksum(bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> int:
    """OKX's book checksum: CRC32 (as a signed 32-bit integer) of ``bid:size:ask:size:...``
    over the best 25 levels of each side, best first, alternating, in the wire's own strings."""
    parts: list[str] = []
    for i in range(CHECKSUM_LEVELS):
        if i < len(bids):
            parts += (bids[i][0], bids[i][1])
        if i < len(asks):
            parts += (asks[i][0], asks[i][1])
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


# Contract sizes


@dataclass(frozen=True, slots=True)
class _Scale:
    """Contracts → coin for one instrument. A power of ten converts as a decimal exponent
    (``float("790.41e-2")`` is exactly 7.9041 and costs little more than a plain ``float``);
    any other size goes through Decimal."""

    size: float
    factor: Decimal
    suffix: str | None  # "e-2" for 0.01


def _scale(size: float) -> _Scale:
    factor = Decimal(repr(size)).normalize()
    sign, digits, exponent = factor.as_tuple()
    suffix = f"e{exponent}" if sign == 0 and digits == (1,) else None
    return _Scale(size, factor, suffix)


def _coins(raw: Any, scale: _Scale, field: str, frame: Any) -> float:
    try:
        try:
            result = float(raw + scale.suffix) if scale.suffix is not None else _decimal(raw, scale)
        except ValueError:  # "1e-5" + "e-2" is no number; Decimal reads it
            result = _decimal(raw, scale)
    except (TypeError, ValueError, ArithmeticError):
        raise MalformedFrame(
            EXCHANGE, f"field {field!r} must be a size, got {raw!r}", frame
        ) from None
    if not 0.0 <= result < _INF:
        raise MalformedFrame(EXCHANGE, f"field {field!r} must be a size >= 0, got {raw!r}", frame)
    return result


def _decimal(raw: Any, scale: _Scale) -> float:
    if type(raw) is not str:
        raise TypeError(f"a size must be a decimal string, got {raw!r}")
    return float(Decimal(raw) * scale.factor)


def _levels(raw: Any, scale: _Scale, field: str, frame: Any) -> list[Level]:
    """``[[px, sz, "0", orders], ...]`` → ``[(price, coins), ...]``; hot path, as
    :func:`detector.venues._fields.parse_levels`: convert all, look for the culprit only on
    failure."""
    if type(raw) is not list:
        raise MalformedFrame(EXCHANGE, f"field {field!r} must be a list of levels", frame)
    suffix = scale.suffix
    try:
        if suffix is None:
            raise ValueError("not a power of ten")
        out = [
            (fp, fq)
            for lv in raw
            if 0.0 < (fp := float(lv[0])) < _INF and 0.0 <= (fq := float(lv[1] + suffix)) < _INF
        ]
    except (TypeError, ValueError, LookupError):
        # Any other contract size, or a size in exponent form: one level at a time, exactly.
        out = _levels_slow(raw, scale, field, frame)
    if len(out) != len(raw):
        raise MalformedFrame(EXCHANGE, _bad_level(raw, scale, field), frame)
    return out


def _levels_slow(raw: list[Any], scale: _Scale, field: str, frame: Any) -> list[Level]:
    out: list[Level] = []
    try:
        for lv in raw:
            price = float(lv[0])
            if not 0.0 < price < _INF:
                raise ValueError(f"price {price}")
            out.append((price, _coins(lv[1], scale, field, frame)))
    except (TypeError, ValueError, LookupError, FrameError) as exc:
        raise caused_by(
            MalformedFrame(EXCHANGE, _bad_level(raw, scale, field), frame), exc
        ) from exc
    return out


def _bad_level(raw: list[Any], scale: _Scale, field: str) -> str:
    for i, level in enumerate(raw):
        try:
            price = float(level[0])
            size = _coins(level[1], scale, field, None)
        except (TypeError, ValueError, LookupError, FrameError):
            return f"field {field!r} level {i} {level!r} is not a [price, size, ...] level"
        if not 0.0 < price < _INF:
            return f"field {field!r} level {i} has an invalid price {level[0]!r}"
        if not 0.0 <= size < _INF:  # pragma: no cover - _coins checks it
            return f"field {field!r} level {i} has an invalid size {level[1]!r}"
    return f"field {field!r} has an invalid level"  # pragma: no cover - unreachable


# The parser


class OkxParser(VenueParser):
    """Turns OKX v5 public frames into events; knows each live USDT swap's contract size."""

    __slots__ = ("_scales",)

    def __init__(self) -> None:
        self._scales: dict[str, _Scale] = {}  # instId → contracts-to-coin conversion

    def learn_instruments(self, instruments: Iterable[Instrument], *, replace: bool = True) -> None:
        """Take the contract sizes of the tradable ``instruments``; ``replace``: the list is
        complete, forget the others (a list of one ``instId`` updates that one only)."""
        if replace:
            self._scales = {i.symbol: _scale(i.contract_size) for i in instruments if i.tradable}
            return
        for i in instruments:
            if i.tradable:
                self._scales[i.symbol] = _scale(i.contract_size)
            else:
                self._scales.pop(i.symbol, None)

    def contract_size(self, instrument: str) -> float | None:
        """Coins per contract of a learnt instrument, else None."""
        scale = self._scales.get(instrument)
        return None if scale is None else scale.size

    def parse_ws_raw(self, payload: bytes | msgspec.Raw, recv_ms: int) -> list[Event]:
        """A WebSocket frame as received → :meth:`parse_ws_message`'s events. (Not typed: OKX
        sizes in contracts are converted from their text, see :class:`_Scale`.)"""
        return self.parse_ws_message(decode_json(payload, EXCHANGE), recv_ms)

    def parse_ws_message(self, data: Any, recv_ms: int) -> list[Event]:
        """A decoded WebSocket frame (channel data, an ``event`` reply, or the text ``pong``)."""
        if type(data) is str:
            if data == "pong":
                return [Pong(EXCHANGE, recv_ms)]
            raise MalformedFrame(
                EXCHANGE, f"text frame {data[:40]!r} is neither JSON nor pong", data
            )
        if type(data) is not dict:
            raise MalformedFrame(EXCHANGE, f"frame must be an object, got {_kind(data)}", data)
        if "event" in data:
            return _event_reply(data, recv_ms)
        arg = data.get("arg")
        if type(arg) is not dict:
            raise MalformedFrame(EXCHANGE, "frame has neither 'event' nor an 'arg' object", data)
        channel, instrument = arg.get("channel"), arg.get("instId")
        if type(channel) is not str or type(instrument) is not str or not instrument:
            raise MalformedFrame(EXCHANGE, f"bad arg {arg!r}", data)
        items = _items(data)
        if channel in _INCREMENTAL:
            return self._books(data, items, instrument, _INCREMENTAL[channel], recv_ms)
        if channel == BOOKS5:
            scale = self._scale_of(instrument, data)
            return [_snapshot(d, instrument, scale, 5, Source.WS, recv_ms, data) for d in items]
        if channel == BBO_TBT:
            scale = self._scale_of(instrument, data)
            return [e for d in items if (e := _bbo(d, instrument, scale, recv_ms, data))]
        if channel == TICKERS:
            scale = self._scale_of(instrument, data)
            return [e for d in items if (e := _ticker(d, instrument, scale, recv_ms, data))]
        if channel == TRADES:
            scale = self._scale_of(instrument, data)
            return [_trade(d, instrument, scale, recv_ms, data) for d in items]
        if channel == FUNDING_RATE:
            return [_funding(d, instrument, recv_ms, data) for d in items]
        return []  # candles, mark price, open interest, ...: not ours to read

    def parse_rest(self, endpoint: str, data: Any, recv_ms: int) -> list[Event]:
        """A decoded REST body of ``endpoint`` (path with query string) → events."""
        if type(data) is not dict:
            raise MalformedFrame(EXCHANGE, f"body must be an object, got {_kind(data)}", data)
        code = require(data, "code", EXCHANGE, "envelope", data)
        if str(code) != "0":
            # Errors come with HTTP 200 (or 4xx) and a code: "51001" instrument does not exist...
            raise FrameError(EXCHANGE, f"code {code}: {data.get('msg', '')}", data)
        path, query = split_endpoint(endpoint)
        items = _items(data)
        if path.endswith(OKX_INSTRUMENTS_PATH):
            # A recording carries this answer: replayed, it converts contracts as the run did.
            self.learn_instruments(parse_okx_instruments(data), replace="instId" not in query)
            return []
        if path.endswith(_BOOKS_PATH):
            instrument = query.get("instId")
            if not instrument:
                raise MalformedFrame(EXCHANGE, f"books: no instId in {endpoint!r}", data)
            scale = self._scale_of(instrument, data)
            return [
                _snapshot(d, instrument, scale, None, Source.REST, recv_ms, data) for d in items
            ]
        if path.endswith(_FUNDING_PATH):
            return [_funding(d, _item_inst(d, data), recv_ms, data) for d in items]
        if path.endswith(_TICKER_PATHS):
            # A list of every swap holds instruments we do not compare: those are left out.
            events: list[Event] = []
            for d in items:
                instrument = _item_inst(d, data)
                known = self._scales.get(instrument)
                if known is not None and (e := _ticker(d, instrument, known, recv_ms, data)):
                    events.append(e)
            return events
        return []  # mark price, open interest, ...: read by their own callers

    def _scale_of(self, instrument: str, frame: Any) -> _Scale:
        scale = self._scales.get(instrument)
        if scale is None:
            raise UnknownInstrument(
                EXCHANGE,
                instrument,
                "contract size unknown: not a live USDT-settled linear swap of the instruments "
                f"list ({INSTRUMENTS_ENDPOINT}), or that list was not read yet",
                frame,
            )
        return scale

    def _books(
        self,
        frame: dict[str, Any],
        items: list[dict[str, Any]],
        instrument: str,
        depth: int,
        recv_ms: int,
    ) -> list[Event]:
        scale = self._scale_of(instrument, frame)
        action = frame.get("action")
        if action == "snapshot":  # prevSeqId is -1: nothing to chain to
            return [
                _snapshot(d, instrument, scale, depth, Source.WS, recv_ms, frame) for d in items
            ]
        if action != "update":
            raise MalformedFrame(EXCHANGE, f"books: unknown action {action!r}", frame)
        events: list[Event] = []
        for d in items:
            f = Fields(d, EXCHANGE, "books", frame)
            seq = _seq_id(d, "seqId", frame)
            events.append(
                DepthDiff(
                    exchange=EXCHANGE,
                    symbol=instrument,
                    bids=_levels(f.value("bids"), scale, "bids", frame),
                    asks=_levels(f.value("asks"), scale, "asks", frame),
                    first_update_id=seq,
                    final_update_id=seq,
                    prev_update_id=_seq_id(d, "prevSeqId", frame),
                    event_time_ms=f.integer("ts"),
                    recv_ms=recv_ms,
                    depth=depth,
                )
            )
        return events


def _items(frame: dict[str, Any]) -> list[dict[str, Any]]:
    items = require(frame, "data", EXCHANGE, "frame", frame)
    if type(items) is not list or any(type(d) is not dict for d in items):
        raise MalformedFrame(EXCHANGE, "field 'data' must be a list of objects", frame)
    return items


def _item_inst(d: dict[str, Any], frame: Any) -> str:
    return Fields(d, EXCHANGE, "item", frame).symbol("instId")


def _seq_id(d: dict[str, Any], key: str, frame: Any) -> int:
    """``seqId``/``prevSeqId``: integers, ``-1`` for a snapshot's previous id."""
    value = require(d, key, EXCHANGE, "books", frame)
    if type(value) is not int:
        raise MalformedFrame(EXCHANGE, f"field {key!r} must be an integer, got {value!r}", frame)
    return value


def _snapshot(
    d: dict[str, Any],
    instrument: str,
    scale: _Scale,
    depth: int | None,
    source: Source,
    recv_ms: int,
    frame: Any,
) -> DepthSnapshot:
    f = Fields(d, EXCHANGE, "books", frame)
    return DepthSnapshot(
        exchange=EXCHANGE,
        symbol=instrument,
        bids=_levels(f.value("bids"), scale, "bids", frame),
        asks=_levels(f.value("asks"), scale, "asks", frame),
        update_id=_seq_id(d, "seqId", frame),
        event_time_ms=f.integer("ts"),
        recv_ms=recv_ms,
        source=source,
        depth=depth,
    )


def _bbo(
    d: dict[str, Any], instrument: str, scale: _Scale, recv_ms: int, frame: Any
) -> BookTicker | None:
    f = Fields(d, EXCHANGE, BBO_TBT, frame)
    bids = _levels(f.value("bids"), scale, "bids", frame)
    asks = _levels(f.value("asks"), scale, "asks", frame)
    if not bids or not asks:
        return None  # one side empty: no top to report
    # update_id stays None: bbo-tbt's seqId is not proven to be the books channel's sequence.
    return BookTicker(EXCHANGE, instrument, *bids[0], *asks[0], None, f.integer("ts"), recv_ms)


def _ticker(
    d: dict[str, Any], instrument: str, scale: _Scale, recv_ms: int, frame: Any
) -> BookTicker | None:
    if any(d.get(key) in (None, "") for key in ("bidPx", "bidSz", "askPx", "askSz")):
        return None  # OKX writes "" for a side it has nothing on
    f = Fields(d, EXCHANGE, TICKERS, frame)
    return BookTicker(
        exchange=EXCHANGE,
        symbol=instrument,
        bid_price=f.price("bidPx"),
        bid_qty=_coins(d["bidSz"], scale, "bidSz", frame),
        ask_price=f.price("askPx"),
        ask_qty=_coins(d["askSz"], scale, "askSz", frame),
        update_id=None,
        event_time_ms=f.integer("ts"),
        recv_ms=recv_ms,
    )


def _trade(d: dict[str, Any], instrument: str, scale: _Scale, recv_ms: int, frame: Any) -> Trade:
    f = Fields(d, EXCHANGE, TRADES, frame)
    taker = f.value("side")
    side = _SIDES.get(taker) if type(taker) is str else None
    if side is None:  # side is the taker's
        raise MalformedFrame(EXCHANGE, f"field 'side' must be buy or sell, got {taker!r}", frame)
    return Trade(
        exchange=EXCHANGE,
        symbol=instrument,
        price=f.price("px"),
        qty=_coins(f.value("sz"), scale, "sz", frame),
        side=side,
        trade_time_ms=f.integer("ts"),
        recv_ms=recv_ms,
    )


def _funding(d: dict[str, Any], instrument: str, recv_ms: int, frame: Any) -> FundingRate:
    """``fundingRate`` is the rate settled at ``fundingTime``; the interval is
    ``nextFundingTime - fundingTime`` (OKX: "typically 8 hours but may be adjusted" to 6, 4, 2
    or 1 h), never assumed."""
    f = Fields(d, EXCHANGE, FUNDING_RATE, frame)
    funding_ms = f.integer("fundingTime")
    next_ms = f.integer("nextFundingTime") if d.get("nextFundingTime") not in (None, "") else None
    hours = (next_ms - funding_ms) / _HOUR_MS if next_ms is not None else None
    if hours is not None and hours <= 0:
        raise MalformedFrame(
            EXCHANGE, f"nextFundingTime {next_ms} is not after fundingTime {funding_ms}", frame
        )
    return FundingRate(
        exchange=EXCHANGE,
        symbol=instrument,
        rate=f.rate("fundingRate"),
        interval_hours=hours,
        next_funding_ms=funding_ms,
        mark_price=None,
        index_price=None,
        event_time_ms=f.integer("ts"),
        recv_ms=recv_ms,
    )


def _event_reply(d: dict[str, Any], recv_ms: int) -> list[Event]:
    """``subscribe`` acks one arg; ``error`` refuses a request (60018 names the arg it refused).
    ``unsubscribe``, ``notice`` (64008: reconnect, the server restarts) and the rest: no event."""
    event = d["event"]
    raw_id = d.get("id")
    request_id = None if raw_id in (None, "") else str(raw_id)
    arg = d.get("arg")
    topic = arg_key(arg) if _is_arg(arg) else None
    if event == "subscribe":
        return [SubscriptionAck(EXCHANGE, True, request_id, "", topic, recv_ms)]
    if event == "error":
        code, message = d.get("code", ""), d.get("msg", "")
        if type(message) is not str:
            raise MalformedFrame(EXCHANGE, f"field 'msg' must be a string, got {message!r}", d)
        if topic is None and (found := _REFUSED_ARG.search(message)):
            topic = f"{found.group(1)}:{found.group(2)}"
        text = f"{code}: {message}" if code else message
        return [SubscriptionAck(EXCHANGE, False, request_id, text, topic, recv_ms)]
    return []


def _is_arg(arg: Any) -> TypeGuard[dict[str, str]]:
    return type(arg) is dict and type(arg.get("channel")) is str and type(arg.get("instId")) is str


def _kind(value: Any) -> str:
    return type(value).__name__
